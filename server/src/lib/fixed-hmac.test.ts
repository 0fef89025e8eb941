import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digest, digestByCreateHash, fixedHmac } from './fixed-hmac.js';

const hex = (n: number) => randomBytes(n).toString('hex').slice(0, n);

describe.each([
  ['digest', digest],
  // What `digest` is on a Node without crypto.hash (20.11): CI's Nodes all have it.
  ['digestByCreateHash', digestByCreateHash],
] as const)('%s', (_name, fn) => {
  it.each(['sha1', 'sha256'] as const)(
    'is %s as createHash computes it, as hex, latin1 and bytes',
    (name) => {
      for (const data of ['', 'get\n/u/a b/ü.jpg\n', Buffer.from([0, 255, 128])]) {
        const bytes = createHash(name).update(data).digest();
        expect(fn(name, data, 'hex')).toBe(bytes.toString('hex'));
        // A byte a character: the HMAC writes it back into its buffer as bytes.
        expect(Buffer.from(fn(name, data, 'latin1'), 'latin1').equals(bytes)).toBe(true);
        expect(fn(name, data, 'buffer').equals(bytes)).toBe(true);
      }
    },
  );
});

describe('fixedHmac', () => {
  it.each([
    ['sha1', 'a 40-character hex key (the COS SignKey)', hex(40)],
    ['sha256', 'a 32-byte key (the SigV4 signing key)', randomBytes(32)],
    ['sha1', 'a key of exactly one block', 'k'.repeat(64)],
    ['sha256', 'a key longer than the block (hashed first)', 'k'.repeat(65)],
    ['sha1', 'a much longer binary key', randomBytes(200)],
    ['sha256', 'an empty key', ''],
  ] as const)('%s with %s is createHmac over head + tail', (name, _what, key) => {
    const head = `${name}\n1767225600;1767229200\nscope/ü\n`;
    const tailLength = name === 'sha1' ? 41 : 64;
    const hmac = fixedHmac(name, key, head, tailLength);
    // Several tails through the same buffers: each answer is its own message's.
    for (let i = 0; i < 5; i++) {
      const tail = name === 'sha1' ? `${hex(40)}\n` : hex(64);
      expect(hmac(tail)).toBe(
        createHmac(name, key)
          .update(head + tail)
          .digest('hex'),
      );
    }
  });

  it('refuses a tail of another length (it would sign a different message)', () => {
    const hmac = fixedHmac('sha1', 'key', 'head\n', 41);
    expect(() => hmac('abc')).toThrow(RangeError);
    expect(() => hmac(`${'a'.repeat(41)}x`)).toThrow(/42 characters, not 41/);
  });
});
