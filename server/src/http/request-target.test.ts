import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTarget } from './request-target.js';

const NAMES = ['t', 'mode', 'preset', 'a', 'ab', ''];

function asUrlReadsIt(target: string) {
  let url: URL;
  try {
    url = new URL(target, 'http://gateway.invalid');
  } catch {
    return null;
  }
  return { pathname: url.pathname, params: NAMES.map((n) => url.searchParams.get(n)) };
}

function asWeReadIt(target: string) {
  const t = parseTarget(target);
  return t && { pathname: t.pathname, params: NAMES.map((n) => t.searchParams.get(n)) };
}

describe('parseTarget', () => {
  it('reads a proxy link without URL, as URL does', () => {
    const target =
      '/proxy/0c7e5a1d-3f2b-4c8e-9a7d-123456789abc?t=k1.tq3x8g.AAAAAAAAAAAAAAAAAAAAAA&mode=stream';
    expect(parseTarget(target)).not.toBeInstanceOf(URL);
    expect(asWeReadIt(target)).toEqual(asUrlReadsIt(target));
  });

  it.each([
    '/',
    '/graphql',
    '/proxy/x?',
    '/proxy/x?t',
    '/proxy/x?t=&t=2',
    '/proxy/x?mode=a=b&&t=1&',
    '/proxy/x?=1&a',
    '//evil.example/proxy/x?t=1',
    '/proxy/../graphql?t=1',
    '/proxy/./x',
    '/proxy/x/..',
    '/proxy/x/..?t=1',
    '/proxy/%2e%2e/x',
    '/proxy/x?t=a+b&mode=%41',
    '/proxy/x?t=1#frag',
    '/a\\b?t=1',
    '/a b?t= 1',
    '/caf\u00e9?t=\u00e9',
  ])('%s: as URL reads it', (target) => {
    expect(asWeReadIt(target)).toEqual(asUrlReadsIt(target));
  });

  it('any target over an alphabet of the characters that matter: as URL reads it', () => {
    const chars = [
      '/',
      '.',
      '?',
      '&',
      '=',
      '%',
      '2',
      'e',
      '+',
      '#',
      'a',
      'b',
      't',
      'A',
      '-',
      '_',
      '~',
      ' ',
      '\\',
      ':',
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 24 }), (cs) => {
        const target = `/${cs.join('')}`;
        expect(asWeReadIt(target)).toEqual(asUrlReadsIt(target));
      }),
      { numRuns: 5000 },
    );
  });
});
