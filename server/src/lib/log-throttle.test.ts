import { describe, expect, it } from 'vitest';
import { LogThrottle } from './log-throttle.js';

describe('LogThrottle', () => {
  it('logs one line per interval and source, the next one counting those left out', () => {
    let now = 0;
    const throttle = new LogThrottle(60_000, () => now);
    const logged: [string, number][] = [];
    const event = (source: string) => throttle.run(source, (suppressed) => logged.push([source, suppressed]));
    for (let i = 0; i < 100; i++) {
      event('queue');
      now += 100;
    }
    event('worker');
    expect(logged).toEqual([
      ['queue', 0],
      ['worker', 0],
    ]);
    now = 60_000;
    event('queue');
    expect(logged.at(-1)).toEqual(['queue', 99]);
    event('queue');
    expect(logged).toHaveLength(3);
  });
});
