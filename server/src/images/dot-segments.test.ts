import { describe, expect, it } from 'vitest';
import { encodeKeyPath } from '../storage/storage.js';
import { hasDotSegment } from './dot-segments.js';

describe('hasDotSegment', () => {
  it('is true exactly for the keys whose URL path a URL parser changes', () => {
    const dotted = [
      '.',
      '..',
      '../..',
      './x',
      'a/.',
      'a/..',
      'a/./b.png',
      'a/../b.png',
      '/./x',
      'é/../x.png',
    ];
    const plain = [
      'a/b.png',
      '.hidden',
      'a/.b/c',
      'a/b./c',
      'a/.../b',
      'a//b',
      '',
      // Percent forms are dot segments to a parser, but a key's `%` is encoded as `%25`.
      'a/%2e/b',
      'a/%2E%2e/b',
      'a/.%2e/b',
      'a/%2e./b',
    ];
    for (const key of dotted) expect(hasDotSegment(key), key).toBe(true);
    for (const key of plain) expect(hasDotSegment(key), key).toBe(false);
    for (const key of [...dotted, ...plain]) {
      const path = `/${encodeKeyPath(key)}`;
      expect(new URL(`http://h${path}`).pathname !== path, key).toBe(hasDotSegment(key));
    }
  });
});
