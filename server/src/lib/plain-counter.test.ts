import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainCounter } from './plain-counter.js';

describe('PlainCounter', () => {
  it("exposes exactly what prom-client's Counter does for the same increments", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const labelNames = ['route', 'status'] as const;
    const a = new PlainCounter({ name: 'x_total', help: 'responses', labelNames, registers: [ours] });
    const b = new Counter({ name: 'x_total', help: 'responses', labelNames, registers: [theirs] });
    const steps: [string, string, number][] = [
      ['proxy', '302', 1],
      ['proxy', '302', 1],
      ['graphql', '200', 3],
      ['proxy', 'aborted', 1],
      ['static', '404', 0],
    ];
    for (const [route, status, by] of steps) {
      a.labels(route, status).inc(by);
      b.labels(route, status).inc(by);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    a.reset();
    b.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('refuses a decrease and a wrong number of labels', () => {
    const c = new PlainCounter({ name: 'y_total', help: 'y', labelNames: ['a'], registers: [] });
    expect(() => c.labels('x').inc(-1)).toThrow();
    expect(() => c.labels('x', 'y')).toThrow();
  });
});
