import { describe, expect, it } from 'vitest';
import { type Coding, createCompressionCache } from './compression.js';

/** A compression that returns a body of `out` bytes, counting its calls, or fails when told to. */
function fakeCompress(out: number) {
  const calls: string[] = [];
  let fail = false;
  return {
    calls,
    failNext: () => {
      fail = true;
    },
    compress: async (body: Buffer, coding: Coding) => {
      calls.push(`${coding}:${body.toString()}`);
      if (fail) {
        fail = false;
        throw new Error('zlib failed');
      }
      return Buffer.alloc(out, 1);
    },
  };
}

const source = (text: string) => async () => Buffer.from(text.padEnd(1000, '.'));

describe('the compression cache', () => {
  it('keeps what fits in its bytes, the least recently used out first', async () => {
    // 300 bytes a body + 256 of overhead an entry: three fit in 1,700 bytes, a fourth does not.
    const z = fakeCompress(300);
    const cache = createCompressionCache({ maxBytes: 1700, compress: z.compress });
    for (const k of ['a', 'b', 'c']) await cache.get(k, 'v1', 'br', source(k));
    await cache.get('a', 'v1', 'br', source('a')); // a is now the most recently used
    await cache.get('d', 'v1', 'br', source('d')); // evicts b, the least recently used
    expect(z.calls).toHaveLength(4);
    await cache.get('a', 'v1', 'br', source('a'));
    await cache.get('c', 'v1', 'br', source('c'));
    expect(z.calls).toHaveLength(4); // still kept
    await cache.get('b', 'v1', 'br', source('b'));
    expect(z.calls).toHaveLength(5); // compressed again
  });

  it('keeps one entry per key and coding: a new version replaces the old', async () => {
    const z = fakeCompress(100);
    const cache = createCompressionCache({ compress: z.compress });
    await cache.get('f', 'v1', 'gzip', source('one'));
    await cache.get('f', 'v1', 'br', source('one'));
    await cache.get('f', 'v2', 'gzip', source('two'));
    await cache.get('f', 'v1', 'br', source('one')); // br's v1 is still there
    await cache.get('f', 'v2', 'gzip', source('two'));
    expect(z.calls.map((c) => c.slice(0, 8))).toEqual(['gzip:one', 'br:one..', 'gzip:two']);
  });

  it('keeps nothing that failed: the next call loads and compresses again', async () => {
    const z = fakeCompress(100);
    const cache = createCompressionCache({ compress: z.compress });
    z.failNext();
    await expect(cache.get('f', 'v1', 'br', source('x'))).rejects.toThrow('zlib failed');
    expect(await cache.get('f', 'v1', 'br', source('x'))).toHaveLength(100);
    await expect(
      cache.get('g', 'v1', 'br', async () => {
        throw new Error('ENOENT');
      }),
    ).rejects.toThrow('ENOENT');
    expect(await cache.get('g', 'v1', 'br', source('g'))).toHaveLength(100);
    expect(z.calls).toHaveLength(3);
  });

  it('answers undefined when a coding does not pay (under a tenth smaller), and keeps that answer', async () => {
    const z = fakeCompress(950);
    const cache = createCompressionCache({ compress: z.compress });
    expect(await cache.get('f', 'v1', 'gzip', source('f'))).toBeUndefined();
    expect(await cache.get('f', 'v1', 'gzip', source('f'))).toBeUndefined();
    expect(z.calls).toHaveLength(1);
  });

  it('a version replaced while its compression runs is neither counted nor kept', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const calls: string[] = [];
    const cache = createCompressionCache({
      maxBytes: 1000,
      compress: async (body) => {
        calls.push(body.toString().slice(0, 3));
        if (body.toString().startsWith('old')) await gate;
        return Buffer.alloc(400, 1);
      },
    });
    const old = cache.get('f', 'v1', 'br', source('old'));
    await new Promise((r) => setImmediate(r));
    await cache.get('f', 'v2', 'br', source('new'));
    release();
    expect(await old).toHaveLength(400); // its waiters still get their answer
    // Had the old entry been counted too (400 + 256 twice), the bound would have evicted v2.
    await cache.get('f', 'v2', 'br', source('new'));
    expect(calls).toEqual(['old', 'new']);
  });
});
