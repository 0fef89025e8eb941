import { expect, it } from 'vitest';
import { CacheBreaker } from './cache-breaker.js';

it('opens on failure, lets one probe through after the cool-down, closes on success', () => {
  let t = 0;
  const b = new CacheBreaker(1000, () => t);
  expect(b.allow()).toBe(true);
  b.failed();
  expect(b.open).toBe(true);
  expect(b.allow()).toBe(false);
  t = 999;
  expect(b.allow()).toBe(false);
  t = 1000;
  expect(b.allow()).toBe(true); // the probe
  expect(b.allow()).toBe(false); // only one at a time
  b.failed();
  expect(b.allow()).toBe(false);
  t = 2000;
  expect(b.allow()).toBe(true);
  b.succeeded();
  expect(b.open).toBe(false);
  expect(b.allow()).toBe(true);
  expect(b.allow()).toBe(true);
});
