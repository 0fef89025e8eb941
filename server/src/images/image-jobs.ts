/**
 * What the images domain asks of the job engine: preloads too long for one request, and the
 * derived variants of a fresh upload. `JobEngine` (jobs/job-engine.ts) provides it; the domain
 * depends on this port, not on the engine.
 */
export interface ImageJobs {
  /**
   * Runs a preload of a long id list as background jobs and waits for their results. Throws
   * `PreloadQueueFull`, having queued nothing, when those jobs do not fit in the wait list.
   */
  preload(ids: readonly string[]): Promise<number>;
  /**
   * Queues the making of a freshly uploaded image's derived variants (s3), on any worker, and
   * returns once queued. Never throws: what could not be queued is left to the backfill.
   */
  enqueueVariants(imageId: string): Promise<void>;
}

/** How long a client refused by a full preload wait list is asked to wait before retrying. */
export const PRELOAD_QUEUE_RETRY_SECONDS = 10;

/** A preload refused because its jobs do not fit in the wait list; none of them was queued. */
export class PreloadQueueFull extends Error {
  constructor(
    /** Preload jobs waiting when the preload was refused. */
    readonly waiting: number,
    /** The bound (PRELOAD_QUEUE_MAX_JOBS). */
    readonly max: number,
  ) {
    super(`preload wait list full: ${waiting} of ${max} jobs waiting`);
    this.name = 'PreloadQueueFull';
  }
}
