import type { Viewer } from '../auth/viewer.js';
import type { Services } from '../services.js';

/** Per-request counters, so a test (or a log line) can see how a query batched. */
export interface RequestCounters {
  /** Calls of the signedUrl loader's batch function. */
  urlBatches: number;
  /** Calls of the image-row loader's batch function. */
  imageBatches: number;
}

export interface Context {
  viewer: Viewer;
  requestId: string;
  services: Services;
  counters: RequestCounters;
}
