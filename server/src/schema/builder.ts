import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import type { Viewer } from '../auth/viewer.js';
import type { ImageRow } from '../db/types.js';
import type { UploadLimits, UploadQuotaView } from '../images/upload-limits.js';
import type { UrlStatusView } from '../images/url-status.js';
import type { DailyStats, WorkerBeat } from '../stats/stats-store.js';
import type { UrlStatsView } from '../stats/url-stats-report.js';
import type { LiveUrlEvent } from '../urls/live-urls.js';
import type { ResolvedUrl } from '../urls/resolved-url.js';
import type { Context } from './context.js';

export interface ImageConnectionShape {
  /** An edge is its row: the cursor is encoded only when a query asks for it. */
  edges: ImageRow[];
  hasNextPage: boolean;
  endCursor: string | null;
  totalCount: number | undefined;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    // Epoch ms too: scalars.ts formats each distinct instant once (a page's URLs share a few).
    DateTime: { Input: Date; Output: Date | string | number };
    ID: { Input: string; Output: string };
    File: { Input: File; Output: never };
  };
  Objects: {
    Viewer: Viewer;
    Image: ImageRow;
    SignedUrl: ResolvedUrl;
    UrlStatus: UrlStatusView;
    ImageConnection: ImageConnectionShape;
    ImageEdge: ImageRow;
    PageInfo: { hasNextPage: boolean; endCursor: string | null };
    SignedUrlEvent: LiveUrlEvent<ImageRow>;
    UrlStats: UrlStatsView;
    DailyUrlStats: DailyStats & { hitRate: number };
    WorkerStatus: WorkerBeat & { alive: boolean };
    UploadLimits: UploadLimits;
    UploadQuota: UploadQuotaView;
  };
}>({
  plugins: [DataloaderPlugin],
  defaultFieldNullability: false,
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
