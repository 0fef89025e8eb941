import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

export type HashName = 'sha1' | 'sha256';

/** Bytes of a digest, and the block size of both hashes (RFC 2104 pads keys to the block). */
const DIGEST_BYTES: Record<HashName, number> = { sha1: 20, sha256: 32 };
const BLOCK = 64;

type Digest = {
  (name: HashName, data: string | Buffer, encoding: 'hex' | 'latin1'): string;
  (name: HashName, data: string | Buffer, encoding: 'buffer'): Buffer;
};

/** `digest` on a Node without crypto.hash (before 20.12): a Hash object per digest. */
export const digestByCreateHash: Digest = (
  name: HashName,
  data: string | Buffer,
  encoding: 'hex' | 'latin1' | 'buffer',
) => {
  const hash = createHash(name).update(data);
  return (encoding === 'buffer' ? hash.digest() : hash.digest(encoding as 'hex')) as string & Buffer;
};

/**
 * One-shot digest (crypto.hash, Node ≥ 20.12); createHash on older Nodes. For the short inputs of
 * URL signing it is about twice as fast as createHash, and it leaves no Hash object behind: a
 * Hash is a stream with a native handle, which the collector must treat as a weak handle, and a
 * page of 100 cold URLs made 200 of them (docs/benchmarks.md, finding 31).
 */
export const digest: Digest =
  typeof crypto.hash === 'function'
    ? (name: HashName, data: string | Buffer, encoding: 'hex' | 'latin1' | 'buffer') =>
        crypto.hash(name, data, encoding as 'hex') as string & Buffer
    : digestByCreateHash;

/**
 * HMAC over messages that share a fixed head and end in a tail of one fixed length (a hex digest,
 * say), done by hand after RFC 2104: the padded keys and the head are written once into two
 * buffers, and per message only its tail is written before two one-shot digests. No allocation
 * but the digests' two strings. Returns the HMAC of `head + tail` in hex; `tail` must be
 * `tailLength` latin1 characters (checked: a wrong length would sign another message).
 */
export function fixedHmac(
  name: HashName,
  key: string | Buffer,
  head: string,
  tailLength: number,
): (tail: string) => string {
  let k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  // A key longer than the block is replaced by its digest (RFC 2104, section 2).
  if (k.length > BLOCK) k = digest(name, k, 'buffer');
  const headLength = Buffer.byteLength(head);
  const inner = Buffer.alloc(BLOCK + headLength + tailLength);
  const outer = Buffer.alloc(BLOCK + DIGEST_BYTES[name]);
  for (let i = 0; i < BLOCK; i++) {
    const b = k[i] ?? 0; // a shorter key is zero-padded to the block
    inner[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
  inner.write(head, BLOCK, 'utf8');
  return (tail) => {
    if (tail.length !== tailLength)
      throw new RangeError(`HMAC tail of ${tail.length} characters, not ${tailLength}`);
    inner.write(tail, BLOCK + headLength, 'latin1');
    // The inner digest as a latin1 string (a byte a character) written into place, not a Buffer
    // copied: a Buffer is an object with its own backing store for the collector to track, and
    // with it an HMAC cost ~1.5 µs against ~0.9 (docs/benchmarks.md, finding 46).
    outer.write(digest(name, inner, 'latin1'), BLOCK, 'latin1');
    return digest(name, outer, 'hex');
  };
}
