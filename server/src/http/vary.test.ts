import { describe, expect, it } from 'vitest';
import { mergeVary } from './vary.js';

describe('mergeVary', () => {
  it('keeps the HTTP layer’s names and yoga’s, each once in any case, the coding last', () => {
    expect(mergeVary(['Authorization'], 'Accept-Encoding')).toBe('Authorization, Accept-Encoding');
    expect(mergeVary(['Authorization, Origin', 'Origin'], 'Accept-Encoding')).toBe(
      'Authorization, Origin, Accept-Encoding',
    );
    expect(mergeVary(['Authorization, Accept-Encoding', 'origin'], 'Accept-Encoding')).toBe(
      'Authorization, Accept-Encoding, origin',
    );
    expect(mergeVary([['a', 'B'], undefined, null, ' , '], 'accept-encoding')).toBe('a, B, accept-encoding');
    expect(mergeVary([], 'Accept-Encoding')).toBe('Accept-Encoding');
  });
});
