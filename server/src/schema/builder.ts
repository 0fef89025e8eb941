import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import type { Viewer } from '../auth/viewer.js';
import type { ImageRow } from '../db/types.js';
import type { DailyStats, WorkerBeat } from '../stats/stats-store.js';
import type { ResolvedUrl } from '../urls/url-service.js';
import type { Context } from './context.js';

export interface UrlStatusShape {
  cached: boolean;
  expiresAt: Date | null;
  ttlSeconds: number | null;
  accessCount: number;
  refreshCount: number;
  lastAccessAt: Date | null;
}

export interface UrlStatsShape {
  requests: number;
  cacheHits: number;
  cacheMisses: number;
  hitRate: number;
  refreshes: number;
  errors: number;
  avgResolveMs: number;
  uniqueImages: number;
  refreshBacklog: number;
  refreshLagSeconds: number;
  workers: (WorkerBeat & { alive: boolean })[];
  days: (DailyStats & { hitRate: number })[];
}

export interface ImageConnectionShape {
  edges: { cursor: string; node: ImageRow }[];
  hasNextPage: boolean;
  endCursor: string | null;
  totalCount: number | undefined;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    ID: { Input: string; Output: string };
    File: { Input: File; Output: never };
  };
  Objects: {
    Viewer: Viewer;
    Image: ImageRow;
    SignedUrl: ResolvedUrl;
    UrlStatus: UrlStatusShape;
    ImageConnection: ImageConnectionShape;
    ImageEdge: { cursor: string; node: ImageRow };
    PageInfo: { hasNextPage: boolean; endCursor: string | null };
    SignedUrlEvent: { imageId: string; signedUrl: ResolvedUrl };
    UrlStats: UrlStatsShape;
    DailyUrlStats: DailyStats & { hitRate: number };
    WorkerStatus: WorkerBeat & { alive: boolean };
  };
}>({
  plugins: [DataloaderPlugin],
  defaultFieldNullability: false,
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
