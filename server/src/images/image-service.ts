import { requireSignedIn, type Viewer } from '../auth/viewer.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Cursor, ImagesRepo, PageFields, PageResult } from '../db/images-repo.js';
import type { ImageRow, ImageVisibility } from '../db/types.js';
import { forbidden, rateLimited } from '../errors/index.js';
import type { EventBus } from '../events/event-bus.js';
import type { Logger } from '../logger.js';
import type { RateLimiter } from '../rate-limit.js';
import type { Storage } from '../storage/storage.js';
import type { AccessCounters } from '../urls/store.js';
import type { ResolvedUrl, UrlService } from '../urls/url-service.js';
import { deleteImage } from './delete.js';
import { MAX_IDS } from './image-id.js';
import { type ImageJobs, PRELOAD_QUEUE_RETRY_SECONDS, PreloadQueueFull } from './image-jobs.js';
import type { Placeholders } from './placeholders.js';
import { preloadRows } from './preload.js';
import { uploadImage } from './upload.js';
import { quotaUsage, type UploadLimits, type UploadQuotaView, uploadLimitsOf } from './upload-limits.js';
import { type UrlStatusRequest, type UrlStatusView, urlStatuses } from './url-status.js';
import type { VariantCatalog } from './variants.js';
import { canManage, readScope } from './visibility.js';

export interface ImageServiceDeps {
  config: Pick<
    Config,
    | 'uploadMaxBytes'
    | 'uploadAllowSvg'
    | 'uploadStripMetadata'
    | 'uploadMaxPixels'
    | 'uploadQuotaBytes'
    | 'uploadQuotaFiles'
    | 'uploadConcurrencyPerViewer'
    | 'defaultMinTtlSeconds'
    | 'regions'
  >;
  images: ImagesRepo;
  storage: Pick<Storage, 'put' | 'delete'>;
  placeholders: Pick<Placeholders, 'enqueue'>;
  urls: Pick<UrlService, 'resolveMany' | 'refreshMany' | 'purge'>;
  counters: Pick<AccessCounters, 'status'>;
  recentRows: { forget(id: string): void };
  /** Visibility changes and deletes reach every node's subscriptions and proxy memory. */
  events: Pick<EventBus, 'publishAccessChanges'>;
  /** refreshSignedUrls calls per viewer. */
  refreshLimiter: RateLimiter;
  /** preloadSignedUrls calls per viewer. */
  preloadLimiter: RateLimiter;
  jobs: ImageJobs;
  /** Presets and transforms: which variant an argument asks for (purged with the image). */
  variants: VariantCatalog;
  clock: Clock;
  logger: Logger;
}

/** Most ids one preloadSignedUrls call may name (larger lists run as a background job). */
export const MAX_PRELOAD_IDS = 10_000;

/**
 * The images domain: what a viewer may do with images, whoever asks (GraphQL resolvers and REST
 * routes are thin adapters over this). Ids arrive parsed; visibility is decided here.
 */
export class ImageService {
  private readonly limits: UploadLimits;

  constructor(private readonly d: ImageServiceDeps) {
    this.limits = uploadLimitsOf(d.config);
  }

  /**
   * A page of the viewer's own images, newest first (one SQL statement), whoever else it may read;
   * with `fields`, rows carrying only those (ImagesRepo.listPage).
   */
  async page(
    viewer: Viewer,
    first: number,
    after: Cursor | undefined,
    withTotal: boolean,
    fields?: PageFields,
  ): Promise<PageResult> {
    requireSignedIn(viewer);
    return this.d.images.listPage(viewer.id, first, after, withTotal, fields);
  }

  /**
   * The rows of ids the viewer may read (images/visibility.ts), in any order; the others are
   * simply absent, exactly like missing ones. One SQL statement: visibility is part of it.
   */
  visible(viewer: Viewer, ids: readonly string[]): Promise<ImageRow[]> {
    return this.d.images.findReadable(readScope(viewer), ids);
  }

  async upload(viewer: Viewer, file: Blob, visibility: ImageVisibility = 'private'): Promise<ImageRow> {
    requireSignedIn(viewer);
    return uploadImage(this.d, viewer.id, file, visibility);
  }

  /** What an upload must fit, so a client can say so before it sends a byte (the same for all). */
  uploadLimits(viewer: Viewer): UploadLimits {
    requireSignedIn(viewer);
    return this.limits;
  }

  /**
   * The viewer's quota and what its live images use of it now; null when no quota is set (and
   * then no SQL). The figure an upload is checked against: the primary's, not a replica's.
   */
  async uploadQuota(viewer: Viewer): Promise<UploadQuotaView | null> {
    requireSignedIn(viewer);
    const { quota } = this.limits;
    if (!quota) return null;
    const used = await quotaUsage(this.d.images, viewer.id);
    return { ...quota, usedBytes: used.bytes, usedFiles: used.files };
  }

  /**
   * Owner or admin. False when missing, already deleted or not readable by the viewer: the three
   * are indistinguishable. FORBIDDEN when the viewer reads it (a public image of someone else)
   * but may not manage it: that tells nothing the viewer could not already see.
   */
  async delete(viewer: Viewer, id: string): Promise<boolean> {
    const row = await this.managed(viewer, id, 'delete');
    return row ? deleteImage(this.d, row) : false;
  }

  /**
   * Owner or admin; the image as it is now, or null when not readable by the viewer (as
   * `delete`, FORBIDDEN when readable but not the viewer's to change). Every node hears the
   * change: subscriptions of viewers who lost access drop the image, proxies forget the row.
   */
  async setVisibility(viewer: Viewer, id: string, visibility: ImageVisibility): Promise<ImageRow | null> {
    const row = await this.managed(viewer, id, 'change the visibility of');
    if (!row) return null;
    const updated = row.visibility === visibility ? row : await this.d.images.setVisibility(id, visibility);
    if (!updated) return null;
    this.d.recentRows.forget(id);
    // Not best effort: a viewer who lost access must stop receiving URLs, so a change that could
    // not be announced is an error. Announced even when nothing changed, so that calling again
    // after such an error converges.
    await this.d.events.publishAccessChanges([{ imageId: id, ownerId: updated.ownerId, visibility }]);
    if (updated !== row) {
      this.d.logger.info({ imageId: id, visibility, by: viewer.id }, 'image visibility changed');
    }
    return updated;
  }

  private async managed(viewer: Viewer, id: string, what: string): Promise<ImageRow | null> {
    requireSignedIn(viewer);
    const [row] = await this.visible(viewer, [id]);
    if (!row) return null;
    if (!canManage(viewer, row)) throw forbidden(`Only the owner or an admin may ${what} this image`);
    return row;
  }

  /**
   * A URL that works now for each id (the client saw a load error), null where not visible.
   * An image whose cached URL is already this step's (by this node's signer, for the bucket
   * chosen now) gets that URL back: signing it again would give the same bytes, and publishing
   * them would let any viewer of a public image push its subscribers an event a call. The
   * others are signed, stored and published. Rate-limited per viewer.
   */
  async refresh(viewer: Viewer, ids: readonly string[]): Promise<(ResolvedUrl | null)[]> {
    requireSignedIn(viewer);
    const limit = await this.d.refreshLimiter.hit(viewer.id);
    if (!limit.allowed) {
      throw rateLimited(`Too many refreshSignedUrls calls; retry in ${limit.retryAfter} s`, limit.retryAfter);
    }
    const rows = await this.visible(viewer, ids);
    const fresh =
      rows.length > 0
        ? await this.d.urls.refreshMany(
            rows.map((r) => ({ id: r.id, key: r.objectKey, placement: r })),
            { onlyStale: true, keepCurrent: true },
          )
        : new Map<string, ResolvedUrl>();
    return ids.map((id) => fresh.get(id) ?? null);
  }

  /**
   * Warms the cache for the images of ids the viewer may see; returns how many were signed.
   * Lists longer than one batch run as background jobs of at most 500 ids (BullMQ with Redis).
   * Rate-limited per viewer; refused with RATE_LIMITED, queuing nothing, when the jobs' wait
   * list is full.
   */
  async preload(viewer: Viewer, ids: readonly string[]): Promise<number> {
    requireSignedIn(viewer);
    // Checked before any SQL: a viewer calling in a loop costs one Redis round trip per call.
    const limit = await this.d.preloadLimiter.hit(viewer.id);
    if (!limit.allowed) {
      throw rateLimited(`Too many preloadSignedUrls calls; retry in ${limit.retryAfter} s`, limit.retryAfter);
    }
    const rows: ImageRow[] = [];
    for (let i = 0; i < ids.length; i += MAX_IDS)
      rows.push(...(await this.visible(viewer, ids.slice(i, i + MAX_IDS))));
    if (rows.length > MAX_IDS) {
      try {
        return await this.d.jobs.preload(rows.map((r) => r.id));
      } catch (err) {
        if (!(err instanceof PreloadQueueFull)) throw err;
        throw rateLimited(
          `Too many preloads are waiting; retry in ${PRELOAD_QUEUE_RETRY_SECONDS} s`,
          PRELOAD_QUEUE_RETRY_SECONDS,
        );
      }
    }
    return preloadRows({ ...this.d, minTtlSeconds: this.d.config.defaultMinTtlSeconds }, rows);
  }

  urlStatus(requests: readonly UrlStatusRequest[]): Promise<UrlStatusView[]> {
    return urlStatuses(this.d, requests);
  }
}
