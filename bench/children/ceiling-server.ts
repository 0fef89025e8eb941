// The ceiling of scenario 1: the same app build (yoga, the Pothos schema, auth, plugins, the HTTP
// layer) answering the same queries from static in-memory data: no Redis, no SQL, no signing.
// The data is the real data (the owner's rows, loaded once at start; their URLs signed once), so
// answers are byte-for-byte the shape and size of the gateway's. Benchmark-only.
//
// CEILING_MODE puts one real part back, to show where the gateway's time goes:
//   static (default) | sql (the real images repository on PostgreSQL) | urls (the real URL
//   service on Redis: one MGET per page)
import { createServer } from 'node:http';
import type { Kysely } from 'kysely';
import type * as AppModule from '../../server/src/app.js';
import type * as ConfigModule from '../../server/src/config.js';
import type * as ConnectModule from '../../server/src/db/connect.js';
import type { Db } from '../../server/src/db/connect.js';
import type * as ReposModule from '../../server/src/db/images-repo.js';
import type { ImagesRepo } from '../../server/src/db/images-repo.js';
import type { Database, ImageRow } from '../../server/src/db/types.js';
import type * as DepsModule from '../../server/src/deps.js';
import type * as LoggerModule from '../../server/src/logger.js';
import type * as MemoryStoreModule from '../../server/src/urls/memory-store.js';
import type { ResolvedUrl, UrlRequest, UrlService } from '../../server/src/urls/url-service.js';
import { loadBuilt } from '../lib/product.js';

const { createApp } = await loadBuilt<typeof AppModule>('app');
const { loadConfig } = await loadBuilt<typeof ConfigModule>('config');
const { createStorage, createStore } = await loadBuilt<typeof DepsModule>('deps');
const { openDatabase } = await loadBuilt<typeof ConnectModule>('db/connect');
const { createImagesRepo } = await loadBuilt<typeof ReposModule>('db/images-repo');
const { MemoryUrlStore } = await loadBuilt<typeof MemoryStoreModule>('urls/memory-store');
const { createLogger } = await loadBuilt<typeof LoggerModule>('logger');

const mode = process.env.CEILING_MODE ?? 'static';
const owner = process.env.CEILING_OWNER ?? 'bench';
const config = loadConfig();
const storage = createStorage(config);
const realDb = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: '/tmp' });
const realImages = createImagesRepo(realDb);

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
  findVisible: async (_owner, ids) => visible(ids),
  findLive: async (ids) => visible(ids),
  insert: () => Promise.reject(new Error('static')),
  softDelete: () => Promise.reject(new Error('static')),
  hardDelete: () => Promise.reject(new Error('static')),
  countLive: async () => rows.length,
};
const staticUrls = {
  async resolveMany(reqs: readonly UrlRequest[]): Promise<ResolvedUrl[]> {
    return reqs.map((r) => urls.get(r.id)!);
  },
};

const noDb: Db = {
  kind: 'postgres',
  kysely: undefined as unknown as Kysely<Database>,
  ping: async () => {},
  close: async () => {},
};
const store =
  mode === 'urls'
    ? createStore(config, createLogger(config.logLevel), { now: Date.now }).store
    : new MemoryUrlStore({ now: Date.now }, 1000);
const app = createApp({ config, db: mode === 'sql' ? realDb : noDb, store, storage });
// Resolvers read ctx.services at call time: swapping these makes the answers static.
if (mode !== 'sql') app.services.images = staticImages;
if (mode !== 'urls') app.services.urls = staticUrls as unknown as UrlService;

const server = createServer(app.handle);
server.keepAliveTimeout = 65_000;
server.listen(config.port, config.host, () => {
  process.stdout.write(`ceiling (${mode}) listening on ${config.port} with ${rows.length} rows\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
