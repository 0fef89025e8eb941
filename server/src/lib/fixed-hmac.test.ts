import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digest, fixedHmac } from './fixed-hmac.js';

const hex = (n: number) => randomBytes(n).toString('hex').slice(0, n);

describe('digest', () => {
  it.each(['sha1', 'sha256'] as const)(
    'is %s as createHash computes it, as hex, latin1 and bytes',
    (name) => {
      for (const data of ['', 'get\n/u/a b/ü.jpg\n', Buffer.from([0, 255, 128])]) {
        expect(digest(name, data, 'hex')).toBe(createHash(name).update(data).digest('hex'));
        // A byte a character: the HMAC writes it back into its buffer as bytes.
        expect(
          Buffer.from(digest(name, data, 'latin1'), 'latin1').equals(createHash(name).update(data).digest()),
        ).toBe(true);
        expect(digest(name, data, 'buffer').equals(createHash(name).update(data).digest())).toBe(true);
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
