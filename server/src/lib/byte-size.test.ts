import { describe, expect, it } from 'vitest';
import { bytesInWords } from './byte-size.js';

describe('bytesInWords', () => {
  it('rounds to a unit a person reads and keeps the exact count beside it', () => {
    expect(bytesInWords(0)).toBe('0 bytes');
    expect(bytesInWords(1023)).toBe('1,023 bytes');
    expect(bytesInWords(1024)).toBe('1 KiB (1,024 bytes)');
    expect(bytesInWords(1536)).toBe('1.5 KiB (1,536 bytes)');
    expect(bytesInWords(4096)).toBe('4 KiB (4,096 bytes)');
    expect(bytesInWords(20 * 1024 * 1024)).toBe('20 MiB (20,971,520 bytes)');
    expect(bytesInWords(1024 * 1024 - 1)).toBe('1 MiB (1,048,575 bytes)');
    expect(bytesInWords(1023 * 1024)).toBe('1023 KiB (1,047,552 bytes)');
    expect(bytesInWords(5 * 1024 ** 3)).toBe('5 GiB (5,368,709,120 bytes)');
    expect(bytesInWords(2 * 1024 ** 5)).toBe('2048 TiB (2,251,799,813,685,248 bytes)');
  });
});
