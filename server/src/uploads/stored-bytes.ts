/**
 * What of an upload is stored when its metadata is stripped (UPLOAD_STRIP_METADATA;
 * docs/architecture.md, "The upload pipeline"): a plan, not a copy. Its pieces are bytes made
 * here (a rewritten header, an orientation-only EXIF block: a few bytes each) and ranges of the
 * upload, which `UploadBody.stream` (images/upload.ts) streams from the chunks it already holds,
 * so the file is never held twice and the stored size is known before the put.
 */

/** Bytes from..to of the upload (to excluded). */
export interface UploadRange {
  readonly from: number;
  readonly to: number;
}

/** A piece of what is stored: bytes made here, or a range of the upload. */
export type StoredPiece = Buffer | UploadRange;

/** The stored bytes, in order. The ranges go forward through the upload and never overlap. */
export interface StoredPlan {
  readonly pieces: readonly StoredPiece[];
}

/** How many bytes a plan stores. */
export function storedSize(plan: StoredPlan): number {
  let size = 0;
  for (const p of plan.pieces) size += Buffer.isBuffer(p) ? p.length : p.to - p.from;
  return size;
}

/**
 * Builds a plan as a walk goes through a file front to back: a kept range that continues the
 * last one extends it, so a file with nothing dropped is one range, and a plan never has more
 * pieces than the walk had chunks.
 */
export class PlanBuilder {
  private readonly pieces: StoredPiece[] = [];
  private last: { from: number; to: number } | undefined;

  /** Keeps the upload's bytes from..to, which must come after every range kept so far. */
  keep(from: number, to: number): void {
    if (to <= from) return;
    if (this.last && this.last.to === from) {
      this.last.to = to;
      return;
    }
    this.last = { from, to };
    this.pieces.push(this.last);
  }

  /** Stores `bytes` (made here) at this point. */
  add(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.pieces.push(bytes);
    this.last = undefined;
  }

  plan(): StoredPlan {
    return { pieces: this.pieces };
  }
}
