/** The upload as a metadata strip reads it: its size and any window of it (copied). */
export interface ByteSource {
  readonly size: number;
  range(start: number, end: number): Promise<Buffer>;
}

/** Bytes read per window: at most this much is copied at a time. */
export const WINDOW_BYTES = 1024 * 1024;

/**
 * A window of the file, read again only when a position falls outside it: the metadata walks
 * (jpeg-metadata.ts, png-metadata.ts, webp-metadata.ts) ask for a few bytes at a time and copy
 * one window at a time.
 */
export class Windowed {
  private base = 0;
  private bytes: Buffer = Buffer.alloc(0);

  constructor(private readonly src: ByteSource) {}

  /** The window holding at..at+need, and `at`'s index in it; undefined past the file's end. */
  async at(at: number, need: number): Promise<{ b: Buffer; i: number } | undefined> {
    if (at < this.base || at + need > this.base + this.bytes.length) {
      if (at + need > this.src.size) return undefined;
      this.base = at;
      this.bytes = await this.src.range(at, Math.min(this.src.size, at + Math.max(WINDOW_BYTES, need)));
      if (this.bytes.length < need) return undefined; // shorter than its size said
    }
    return { b: this.bytes, i: at - this.base };
  }

  /**
   * As `at`, without waiting, when at..at+need lies in the window already read (undefined when
   * not): a walk over many small chunks takes them from one window without an await each.
   */
  peek(at: number, need: number): { b: Buffer; i: number } | undefined {
    if (at < this.base || at + need > this.base + this.bytes.length) return undefined;
    return { b: this.bytes, i: at - this.base };
  }

  /** The byte at `at`; undefined past the file's end. */
  async byte(at: number): Promise<number | undefined> {
    const w = await this.at(at, 1);
    return w?.b[w.i];
  }
}

/** Lets other requests run: a walk over many chunks awaits this between stretches of them. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Says when to yield the event loop: every `chunks` chunks walked or `bytes` bytes walked over,
 * whichever comes first, so a file of a million tiny chunks is walked in short stretches.
 */
export class Pacer {
  private count = 0;
  private from = 0;

  constructor(
    private readonly chunks = 4096,
    private readonly bytes = WINDOW_BYTES,
  ) {}

  /** Called once a chunk, with the walk's position: true when the walk should await `nextTurn`. */
  due(at: number): boolean {
    if (++this.count < this.chunks && at - this.from < this.bytes) return false;
    this.count = 0;
    this.from = at;
    return true;
  }
}
