import { expect, it } from 'vitest';
import { keySlot } from './key-slot.js';

it('computes the slots Redis Cluster documents', () => {
  // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
  expect(keySlot('123456789')).toBe(12739);
  expect(keySlot('foo')).toBe(12182);
  expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
  expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
  // An empty tag is not a tag: the whole key is hashed.
  expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
});
