import { describe, expect, it } from 'vitest';
import { isRedisUnreachable } from './unreachable.js';

describe('isRedisUnreachable', () => {
  it('tells a connection failure from a command failure', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(isRedisUnreachable(refused)).toBe(true);
    expect(isRedisUnreachable(new Error('Connection is closed.'))).toBe(true);
    expect(isRedisUnreachable(new Error('ERR Error running script'))).toBe(false);
  });
});
