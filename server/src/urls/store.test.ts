import { describe, expect, it } from 'vitest';
import { signerFingerprint } from '../storage/storage.js';
import { decodeSignature, encodeSignature } from './store.js';

describe("the cache's text form of a signature", () => {
  const by = signerFingerprint('local', 'a-secret-of-sixteen+', 'http://gw.test/local-bucket/');

  it("keeps its signer's mark, before the region's, and reads an unmarked value as no signer", () => {
    expect(by).toMatch(/^[A-Za-z0-9_-]{8}$/);
    const own = { start: 10, end: 20, sig: 'a.b.c', by };
    const remote = { ...own, region: 'ap-singapore' };
    expect(encodeSignature(own)).toBe(`!${by}.a.k.a.b.c`);
    expect(encodeSignature(remote)).toBe(`!${by}.~ap-singapore.a.k.a.b.c`);
    expect(decodeSignature(encodeSignature(own))).toEqual(own);
    expect(decodeSignature(encodeSignature(remote))).toEqual(remote);
    // A value written by a version without the mark: no signer, so no node's (urls/url-service.ts).
    expect(decodeSignature('a.k.a.b.c')).toEqual({ start: 10, end: 20, sig: 'a.b.c', by: undefined });
    expect(decodeSignature('!.a.k.x')).toBeNull();
    expect(decodeSignature(`!${by}.~.a.k.x`)).toBeNull();
  });

  it('is read as no value by a version without the mark (a rolling upgrade never builds a URL of it)', () => {
    // That version parsed the start as base 36 from the first character on.
    const marked = encodeSignature({ start: 10, end: 20, sig: 'x', by });
    expect(Number.isFinite(Number.parseInt(marked.slice(0, marked.indexOf('.')), 36))).toBe(false);
  });

  it('differs for every part a signature depends on, and shows none of them', () => {
    const parts = ['cos', 'AKIDEXAMPLE', 'secret', undefined, 'bucket.cos.ap-guangzhou.myqcloud.com'];
    const base = signerFingerprint(...parts);
    for (let i = 0; i < parts.length; i++) {
      const changed = [...parts];
      changed[i] = `${changed[i] ?? ''}x`;
      expect(signerFingerprint(...changed)).not.toBe(base);
    }
    expect(signerFingerprint(...parts)).toBe(base);
    for (const p of parts) if (p) expect(base).not.toContain(p.slice(0, 4));
  });
});
