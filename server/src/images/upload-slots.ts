import { AppError } from '../errors/index.js';

/**
 * Retry-After for an upload refused for want of a slot: a slot frees when an upload in flight
 * ends, which is a matter of seconds.
 */
export const UPLOAD_SLOT_RETRY_SECONDS = 2;

export interface UploadSlotLimits {
  /** Uploads one viewer may have in flight on this node. */
  perViewer: number;
  /** Uploads in flight on this node, all viewers together. */
  perNode: number;
}

/**
 * A slot held for one upload. Every party that keeps the upload's bytes alive (the HTTP exchange,
 * the resolver storing them) retains it; the slot frees when the last of them releases.
 */
export interface UploadLease {
  retain(): void;
  release(): void;
}

/**
 * How many uploads may be in flight on this node, per viewer and in all. An upload holds its whole
 * file in memory (the multipart parser's) until it is stored, so this bounds the memory uploads
 * take: at most perNode × UPLOAD_MAX_BYTES. Taken before the body is read; counted in this process
 * (each node bounds its own memory).
 */
export class UploadSlots {
  private readonly byViewer = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly limits: UploadSlotLimits,
    private readonly onChange: (inFlight: number) => void = () => {},
  ) {}

  /** Uploads in flight on this node. */
  get inFlight(): number {
    return this.total;
  }

  /** Takes a slot for the viewer, or refuses with RATE_LIMITED and a Retry-After. */
  acquire(viewerId: string, options: { requestLevel?: boolean } = {}): UploadLease {
    const mine = this.byViewer.get(viewerId) ?? 0;
    if (mine >= this.limits.perViewer) {
      throw refused(
        `Too many uploads in flight (at most ${this.limits.perViewer} at a time); retry when one has finished`,
        options.requestLevel,
      );
    }
    if (this.total >= this.limits.perNode) {
      throw refused('The server is busy with other uploads; retry in a moment', options.requestLevel);
    }
    this.byViewer.set(viewerId, mine + 1);
    this.total++;
    this.onChange(this.total);

    let holders = 1;
    const free = () => {
      const left = (this.byViewer.get(viewerId) ?? 1) - 1;
      if (left > 0) this.byViewer.set(viewerId, left);
      else this.byViewer.delete(viewerId);
      this.total--;
      this.onChange(this.total);
    };
    return {
      retain() {
        if (holders > 0) holders++;
      },
      release() {
        if (holders === 0) return;
        holders--;
        if (holders === 0) free();
      },
    };
  }
}

function refused(message: string, requestLevel: boolean | undefined): AppError {
  return new AppError('RATE_LIMITED', message, {
    retryAfterSeconds: UPLOAD_SLOT_RETRY_SECONDS,
    // A request-level refusal carries its status in the GraphQL response; its Retry-After too.
    ...(requestLevel
      ? { requestLevel: true, headers: { 'retry-after': String(UPLOAD_SLOT_RETRY_SECONDS) } }
      : {}),
  });
}
