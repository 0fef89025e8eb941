// The hand-written reference of scenario 1: what a user would write instead of GraphQL (the
// replaced system's `/batch/urls`), doing exactly the page's I/O and no more. A bare `node:http`
// endpoint: the JWT check (jose, HS256, as the gateway), the page's one SQL statement (the same
// columns, order and limit), one MGET of the page's cached URLs, the same signing for misses (the
// product's built cos driver on the product's window grid, written back with one pipeline), and
// the same JSON shape as the GraphQL answer. No framework, no schema, no metrics, no memo.
// Benchmark-only.
import { createServer, type IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { jwtVerify } from 'jose';
import pg from 'pg';
import type * as ConfigModule from '../../server/src/config.js';
import type * as ContainerModule from '../../server/src/container.js';
import type * as RedisStoreModule from '../../server/src/urls/redis-store.js';
import type * as StoreModule from '../../server/src/urls/store.js';
import type * as GridModule from '../../server/src/urls/window-grid.js';
import { loadBuilt } from '../lib/product.js';

const { loadConfig } = await loadBuilt<typeof ConfigModule>('config');
const { createStorage } = await loadBuilt<typeof ContainerModule>('container');
const { urlKeys } = await loadBuilt<typeof RedisStoreModule>('urls/redis-store');
const { decodeSignature, encodeSignature } = await loadBuilt<typeof StoreModule>('urls/store');
const { WindowGrid } = await loadBuilt<typeof GridModule>('urls/window-grid');

const config = loadConfig(process.env);
const storage = createStorage(config);
const grid = new WindowGrid(config);
const keys = urlKeys(config.redisPrefix);
const secret = new TextEncoder().encode(process.env.AUTH_JWT_SECRET);
const redis = new Redis(process.env.REDIS_URL!);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const minTtlMs = config.defaultMinTtlSeconds * 1000;

const PAGE_SQL =
  'select id, owner_id, object_key, content_type, byte_size, width, height, etag, visibility, ' +
  'placeholder, created_at, deleted_at from images where owner_id = $1 and deleted_at is null ' +
  'order by created_at desc, id desc limit $2';

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      s += c;
    });
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

interface Row {
  id: string;
  object_key: string;
}

async function page(req: IncomingMessage): Promise<string> {
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ')) throw new Error('unauthenticated');
  const { payload } = await jwtVerify(auth.slice(7), secret, { algorithms: ['HS256'] });
  const first = Number(
    (JSON.parse(await body(req)) as { variables?: { first?: number } }).variables?.first ?? 20,
  );
  const { rows } = await pool.query<Row>(PAGE_SQL, [payload.sub, first + 1]);
  const shown = rows.slice(0, first);
  const cached = shown.length > 0 ? await redis.mget(shown.map((r) => keys.url(r.id))) : [];
  const now = Date.now();
  const out: { id: string; url: string; expiresAt: number }[] = [];
  const misses: { i: number; row: Row; start: number; end: number }[] = [];
  shown.forEach((row, i) => {
    const sig = decodeSignature(cached[i]);
    if (sig && sig.end * 1000 - now >= minTtlMs && grid.isCurrent(row.id, sig, now)) {
      out[i] = { id: row.id, url: storage.urlFor(row.object_key, sig), expiresAt: sig.end * 1000 };
    } else {
      const w = grid.windowAt(row.id, now);
      misses.push({ i, row, start: w.start, end: w.end });
    }
  });
  if (misses.length > 0) {
    const write = redis.pipeline();
    for (const m of misses) {
      const [sig] = storage.signMany([m.row.object_key], { start: m.start, end: m.end });
      const s = { start: m.start, end: m.end, sig: sig! };
      out[m.i] = { id: m.row.id, url: storage.urlFor(m.row.object_key, s), expiresAt: m.end * 1000 };
      write.set(keys.url(m.row.id), encodeSignature(s), 'PX', Math.max(1, m.end * 1000 - now));
    }
    await write.exec();
  }
  return JSON.stringify({
    data: {
      images: {
        edges: out.map((o) => ({
          node: { id: o.id, signedUrl: { url: o.url, expiresAt: new Date(o.expiresAt).toISOString() } },
        })),
      },
    },
  });
}

const server = createServer((req, res) => {
  page(req).then(
    (json) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
    },
    (err: Error) => {
      res.writeHead(err.message === 'unauthenticated' ? 401 : 500).end();
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  process.stdout.write(`reference listening on ${process.env.PORT}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
