import { describe, expect, it } from 'vitest';
import { encodeKeyPath } from './storage.js';

/** What encodeKeyPath must answer: each segment encodeURIComponent'd, the slashes kept. */
const bySegment = (key: string) => key.split('/').map(encodeURIComponent).join('/');

describe('encodeKeyPath', () => {
  it('returns keys with nothing to encode as they are', () => {
    for (const key of [
      'u/owner-1/01HZX0000000000000000000AB.jpg',
      'a.jpg',
      'deep/a/b/c~d_e.f-g',
      '/lead//double/',
    ]) {
      expect(encodeKeyPath(key)).toBe(key);
      expect(encodeKeyPath(key)).toBe(bySegment(key));
    }
  });

  it('encodes every other character as encodeURIComponent does, segment by segment', () => {
    const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c)).join('');
    const keys = [
      ascii,
      `u/x/${ascii}/y`,
      'with space/and+plus.jpg',
      'unicode/相册/фото €.webp',
      "odd!'()*~chars.gif",
      'percent%2F/hash#/query?.jpg',
      'emoji/😀.png',
      'safe/prefix/then é',
    ];
    for (const key of keys) expect(encodeKeyPath(key)).toBe(bySegment(key));
  });
});
