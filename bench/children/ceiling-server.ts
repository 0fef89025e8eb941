// The ceiling of scenario 1: the same app build (yoga, the Pothos schema, auth, plugins, the HTTP
// layer) answering the same queries from static in-memory data: no Redis, no SQL, no signing.
// The data is the real data (the owner's rows, loaded once at start; their URLs signed once), so
// answers are byte-for-byte the shape and size of the gateway's. Benchmark-only.
//
// CEILING_MODE puts one real part back, to show where the gateway's time goes:
//   static (default) | sql (the real images repository on PostgreSQL) | urls (the real URL
//   service on Redis: one MGET per page)
// and, for bench/tools/statement-cost.ts, static answers after part of the page's SQL:
//   ping (one `select $1` round trip per page) | rows (the page's statement on a bare pg pool,
//   its rows decoded and dropped)
import { createServer } from 'node:http';
import pg from 'pg';
import type * as ConfigModule from '../../server/src/config.js';
import type * as ContainerModule from '../../server/src/container.js';
import type { ImagesRepo } from '../../server/src/db/images-repo.js';
import type * as PgTypesModule from '../../server/src/db/pg-types.js';
import type { ImageRow } from '../../server/src/db/types.js';
import type * as HttpAppModule from '../../server/src/http/app.js';
import type { ImageService } from '../../server/src/images/image-service.js';
import type { SchemaServices } from '../../server/src/schema/context.js';
import type { ResolvedUrl, UrlRequest } from '../../server/src/urls/url-service.js';
import { PAGE_COLUMNS, pageStatement } from '../lib/page-statement.js';
import { loadBuilt } from '../lib/product.js';

const { loadConfig } = await loadBuilt<typeof ConfigModule>('config');
const { createContainer } = await loadBuilt<typeof ContainerModule>('container');
const { createHttpApp } = await loadBuilt<typeof HttpAppModule>('http/app');
const { pgTypes } = await loadBuilt<typeof PgTypesModule>('db/pg-types');

const mode = process.env.CEILING_MODE ?? 'static';
const owner = process.env.CEILING_OWNER ?? 'bench';
// Without REDIS_URL unless the mode measures the URL service: the embedded in-process parts.
const config = loadConfig(
  mode === 'urls' ? process.env : { ...process.env, REDIS_URL: undefined, REDIS_CLUSTER_NODES: undefined },
);
// The one composition root, as the gateway builds itself; the schema's domain is then swapped.
const c = await createContainer(config);
const { storage } = c;
const realImages = c.imagesRepo;

// Every row of the owner, newest first (the page query's order), read once.
const rows: ImageRow[] = [];
for (let after: ImageRow | undefined; ; ) {
  const page = await realImages.listPage(
    owner,
    100,
    after && { createdAt: after.createdAt, id: after.id },
    false,
  );
  rows.push(...page.rows);
  after = page.rows.at(-1);
  if (!page.hasNextPage) break;
}
const indexOf = new Map(rows.map((r, i) => [r.id, i]));
const nowS = Math.floor(Date.now() / 1000);
const window = { start: nowS - 60, end: nowS + config.urlTtlSeconds };
const sigs = storage.signMany(
  rows.map((r) => r.objectKey),
  window,
);
const urls = new Map<string, ResolvedUrl>(
  rows.map((r, i) => [
    r.id,
    {
      url: storage.urlFor(r.objectKey, { ...window, sig: sigs[i]! }),
      expiresAt: window.end * 1000,
      refreshAt: window.end * 1000 - config.refreshAheadSeconds * 1000,
      cached: true,
    },
  ]),
);
const visible = (ids: readonly string[]) =>
  ids.flatMap((id) => (indexOf.has(id) ? [rows[indexOf.get(id)!]!] : []));

const staticImages: ImagesRepo = {
  async listPage(_owner, first, after, withTotal) {
    const from = after ? (indexOf.get(after.id) ?? rows.length) + 1 : 0;
    const page = rows.slice(from, from + first);
    return {
      rows: page,
      hasNextPage: from + first < rows.length,
      totalCount: withTotal ? rows.length : undefined,
    };
  },
  findReadable: async (_scope, ids) => visible(ids),
  findReadableMany: async (lookups) => Promise.all(lookups.map((l) => visible(l.ids))),
  setVisibility: () => Promise.reject(new Error('static')),
  findLive: async (ids) => visible(ids),
  insert: () => Promise.reject(new Error('static')),
  insertImported: () => Promise.reject(new Error('static')),
  softDelete: () => Promise.reject(new Error('static')),
  hardDelete: () => Promise.reject(new Error('static')),
  countLive: async () => rows.length,
  usage: () => Promise.reject(new Error('static')),
  keysWithRows: () => Promise.reject(new Error('static')),
  keysWithLiveRows: () => Promise.reject(new Error('static')),
  missingPlaceholders: async () => [],
  setPlaceholder: () => Promise.reject(new Error('static')),
  missingVariants: async () => [],
  addVariantReady: () => Promise.reject(new Error('static')),
  setVariantsOf: () => Promise.reject(new Error('static')),
  resetVariantsOf: async () => 0,
  pendingReplicas: async () => [],
  markReplicated: () => Promise.reject(new Error('static')),
};
/**
 * The ping and rows modes tell the cost of waiting on PostgreSQL from the cost of the page's rows
 * (bench/tools/statement-cost.ts). Both use the extended protocol, as the gateway's statements
 * do, so the two differ by the rows alone. The statement is scenario 1's, as the hand-written
 * reference sends it (bench/lib/page-statement.ts).
 */
const pool =
  mode === 'ping' || mode === 'rows'
    ? new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
    : undefined;
// An idle client losing its server emits 'error' on the pool: without a listener it would crash.
pool?.on('error', () => {});
const PAGE_STATEMENT = pageStatement(PAGE_COLUMNS);
const beforeAnswer = pool
  ? mode === 'ping'
    ? () => pool.query('select $1::int', [1])
    : () => pool.query({ text: PAGE_STATEMENT, values: [owner, 101], types: pgTypes })
  : undefined;

const staticUrls = {
  async resolveMany(reqs: readonly UrlRequest[]): Promise<ResolvedUrl[]> {
    return reqs.map((r) => urls.get(r.id)!);
  },
};

// Resolvers call only the schema's domain: swapping its parts makes the answers static.
const schema: SchemaServices = { ...c.schema };
if (mode !== 'sql') {
  schema.images = {
    page: beforeAnswer
      ? async (viewer, first, after, withTotal) => {
          await beforeAnswer();
          return staticImages.listPage(viewer.id, first, after, withTotal);
        }
      : (viewer, first, after, withTotal) => staticImages.listPage(viewer.id, first, after, withTotal),
    visible: (_viewer, ids) => staticImages.findReadable({ all: true }, ids),
  } as Pick<ImageService, 'page' | 'visible'> as ImageService;
}
if (mode !== 'urls') schema.urls = staticUrls;
const app = createHttpApp({ ...c, schema });

const server = createServer(app.handle);
server.keepAliveTimeout = 65_000;
server.listen(config.port, config.host, () => {
  process.stdout.write(`ceiling (${mode}) listening on ${config.port} with ${rows.length} rows\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
