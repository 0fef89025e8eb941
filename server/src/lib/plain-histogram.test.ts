import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainHistogram } from './plain-histogram.js';

describe('PlainHistogram', () => {
  it("exposes exactly what prom-client's Histogram does for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const buckets = [30, 60, 120, 300, 3600];
    const a = new PlainHistogram({ name: 'x_seconds', help: 'remaining life', buckets, registers: [ours] });
    const b = new Histogram({ name: 'x_seconds', help: 'remaining life', buckets, registers: [theirs] });
    for (const v of [0, 29.9, 30, 30.5, 60, 61, 300, 3599, 3600, 3601, 86_400, Number.NaN]) {
      a.observe(v);
      if (Number.isFinite(v)) b.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    a.reset();
    expect(await ours.metrics()).toContain('x_seconds_count 0');
  });
});
