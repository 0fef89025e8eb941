import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from './read-replica.js';

describe('parseLsn', () => {
  it('reads both hex halves of a WAL position, in order', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('0/3000148')).toBe(0x3000148n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('1/0') > parseLsn('0/FFFFFFFF')).toBe(true);
  });

  it('refuses what is not a pg_lsn', () => {
    for (const bad of ['', '0', '0/', '/1', 'x/1', '0/123456789', '0/1/2'])
      expect(() => parseLsn(bad)).toThrow();
  });
});

describe('formatLsn', () => {
  it('writes a WAL position as PostgreSQL does, and parseLsn reads it back', () => {
    expect(formatLsn(0n)).toBe('0/0');
    expect(formatLsn(0x3000148n)).toBe('0/3000148');
    expect(formatLsn((0x16n << 32n) | 0xb374d848n)).toBe('16/B374D848');
    for (const text of ['0/0', '0/3000148', '16/B374D848', 'FFFFFFFF/FFFFFFFF'])
      expect(formatLsn(parseLsn(text))).toBe(text);
  });
});
