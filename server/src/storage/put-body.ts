import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { type PutBody, StorageError } from './storage.js';

/** A driver's put timing: its per-call deadline and the slowest upload rate it allows. */
export interface PutTiming {
  timeoutMs: number;
  putMinBytesPerSecond: number;
}

/**
 * How long a put of `bytes` may take before the driver gives up on it: the per-call deadline plus
 * the time the bytes need at the slowest rate allowed. A fixed deadline would fail every large
 * upload on a slow link, and a put left running past it may land after its clean-up. Config
 * checks with it that the API's request timeout outlasts the largest upload's put.
 */
export function putDeadlineMs(timing: PutTiming, bytes: number): number {
  return timing.timeoutMs + Math.ceil((bytes * 1000) / timing.putMinBytesPerSecond);
}

/**
 * A put's body on its way to the store: counted (a body that is not exactly its declared size
 * fails the put, so a store never keeps a cut-off object under a full object's name) and hashed
 * (the MD5 is the ETag of a simple upload). `ended` tells whether every byte was handed on.
 */
export class PutBodyTap extends Transform {
  private readonly md5 = createHash('md5');
  private count = 0;
  private digest: string | undefined;

  constructor(readonly size: number) {
    super();
    // The consumer (an SDK request) may attach its own listener only later; an early failure
    // must not become an uncaught exception meanwhile.
    this.on('error', () => {});
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.count += chunk.length;
    if (this.count > this.size) {
      done(new StorageError('rejected', `the body is longer than its declared ${this.size} bytes`));
      return;
    }
    this.md5.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.count !== this.size) {
      done(new StorageError('rejected', `the body ended after ${this.count} of ${this.size} bytes`));
      return;
    }
    this.digest = this.md5.digest('hex');
    done();
  }

  /** The quoted MD5 of the body, once all of it went through. */
  get etag(): string | undefined {
    return this.digest === undefined ? undefined : `"${this.digest}"`;
  }
}

/** Slices a buffer is handed on in (views, not copies). */
const SLICE_BYTES = 64 * 1024;

function* slices(b: Buffer): Generator<Buffer> {
  for (let at = 0; at < b.length; at += SLICE_BYTES) yield b.subarray(at, at + SLICE_BYTES);
}

/**
 * The body of a put as one tap, piped in with backpressure, an error on either side ending both
 * (destroying the tap stops reading the source). A buffer goes in slices: handed on whole, it
 * would sit in the request's own buffer at once, and "all of it handed on" would say nothing
 * about what was sent.
 */
export function tapBody(body: PutBody, size: number | undefined): PutBodyTap {
  if (Buffer.isBuffer(body)) {
    if (size !== undefined && size !== body.length) {
      throw new StorageError('rejected', `a body of ${body.length} bytes was declared as ${size}`);
    }
    return tapBody(Readable.from(slices(body), { objectMode: false }), body.length);
  }
  if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
    throw new StorageError('rejected', 'a streamed put needs its size');
  }
  const tap = new PutBodyTap(size);
  body.on('error', (err) => tap.destroy(err));
  tap.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(tap);
  return tap;
}
