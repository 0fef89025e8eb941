// The hand-written reference of scenario 1: what a user would write instead of GraphQL (the
// replaced system's `/batch/urls`), doing exactly the page's I/O and no more. A bare `node:http`
// endpoint: the JWT check (jose, HS256, as the gateway), the page's one SQL statement (the same
// columns, order, limit and keyset cursor), one MGET of the page's cached URLs, the same signing
// for misses (the product's built cos driver on the product's window grid, written back with one
// pipeline sent after the answer, as the gateway does), and the same JSON shape as the GraphQL
// answer. No framework, no schema, no metrics, no memo, no refresh schedule, no access counts, no
// events: its cold page (scenario 4) is a miss at its plainest.
// `POST /variants` answers scenario 14's page instead: each image's original, its `thumb` and the
// thumb's srcset, worked out by the product's built VariantCatalog (which URL, which variant),
// read, signed and written back the same way. Benchmark-only.
import { createServer, type IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { jwtVerify } from 'jose';
import pg from 'pg';
import type * as ConfigModule from '../../server/src/config.js';
import type * as ContainerModule from '../../server/src/container.js';
import type * as VariantsModule from '../../server/src/images/variants.js';
import type * as ValidateModule from '../../server/src/schema/validate.js';
import type { UrlSignature } from '../../server/src/storage/storage.js';
import type { Variant } from '../../server/src/storage/variant.js';
import type * as RedisStoreModule from '../../server/src/urls/redis-store.js';
import type * as StoreModule from '../../server/src/urls/store.js';
import type * as GridModule from '../../server/src/urls/window-grid.js';
import { PAGE_COLUMNS, pageStatement, VARIANT_PAGE_COLUMNS } from '../lib/page-statement.js';
import { loadBuilt } from '../lib/product.js';

const { loadConfig } = await loadBuilt<typeof ConfigModule>('config');
const { createStorage } = await loadBuilt<typeof ContainerModule>('container');
const { urlKeys } = await loadBuilt<typeof RedisStoreModule>('urls/redis-store');
const { decodeSignature, encodeSignature } = await loadBuilt<typeof StoreModule>('urls/store');
const { WindowGrid } = await loadBuilt<typeof GridModule>('urls/window-grid');
const { VariantCatalog } = await loadBuilt<typeof VariantsModule>('images/variants');
const { decodeCursor } = await loadBuilt<typeof ValidateModule>('schema/validate');

const config = loadConfig(process.env);
const storage = createStorage(config);
const grid = new WindowGrid(config);
const keys = urlKeys(config.redisPrefix);
const secret = new TextEncoder().encode(process.env.AUTH_JWT_SECRET);
const redis = new Redis(process.env.REDIS_URL!);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const minTtlMs = config.defaultMinTtlSeconds * 1000;
const catalog = new VariantCatalog(config.images, { derivedObjects: storage.driver === 's3' });
const PRESET = 'thumb';

/** The page's statement, with the columns the gateway reads for the same page (its projection). */
const statements = (columns: string) => ({
  first: pageStatement(columns),
  after: pageStatement(columns, true),
});
const PAGE_SQL = statements(PAGE_COLUMNS);
const VARIANT_PAGE_SQL = statements(VARIANT_PAGE_COLUMNS);

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
  content_type: string;
  width: number | null;
  height: number | null;
  created_at: Date;
}

/** The JWT check, the one SQL statement: the page's rows (after the cursor, when one is sent). */
async function rowsOf(req: IncomingMessage, statement: ReturnType<typeof statements>): Promise<Row[]> {
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ')) throw new Error('unauthenticated');
  const { payload } = await jwtVerify(auth.slice(7), secret, { algorithms: ['HS256'] });
  const vars =
    (JSON.parse(await body(req)) as { variables?: { first?: number; after?: string } }).variables ?? {};
  const first = Number(vars.first ?? 20);
  const after = decodeCursor(vars.after);
  const { rows } = after
    ? await pool.query<Row>(statement.after, [payload.sub, first + 1, after.createdAt, after.id])
    : await pool.query<Row>(statement.first, [payload.sub, first + 1]);
  return rows.slice(0, first);
}

/** What to sign for one URL: the url id (the cache key's), the object key and the variant. */
interface Want {
  id: string;
  key: string;
  variant?: Variant;
}

interface Signed {
  url: string;
  expiresAt: number;
}

/**
 * One MGET of every wanted URL; the misses signed on the grid and written back in one pipeline,
 * not awaited: the URL is the step's whatever the cache holds (the grid), so the answer does not
 * wait for it (as in the gateway; a lost write costs a signing later).
 */
const by = storage.signedBy;

async function urlsOf(wants: readonly Want[]): Promise<Signed[]> {
  const cached = wants.length > 0 ? await redis.mget(wants.map((w) => keys.url(w.id))) : [];
  const now = Date.now();
  const out: Signed[] = new Array(wants.length);
  const misses: { i: number; start: number; end: number }[] = [];
  wants.forEach((w, i) => {
    const sig = decodeSignature(cached[i]);
    // As the gateway: a signature is good only from these credentials (storage.ts, `signedBy`).
    if (sig && sig.by === by && sig.end * 1000 - now >= minTtlMs && grid.isCurrent(w.id, sig, now)) {
      out[i] = { url: storage.urlFor(w.key, sig, w.variant), expiresAt: sig.end * 1000 };
    } else {
      const win = grid.windowAt(w.id, now);
      misses.push({ i, start: win.start, end: win.end });
    }
  });
  if (misses.length > 0) {
    const signed: { id: string; sig: UrlSignature }[] = [];
    for (const m of misses) {
      const w = wants[m.i]!;
      const [sig] = storage.signMany([w.key], { start: m.start, end: m.end }, [w.variant]);
      const s = { start: m.start, end: m.end, sig: sig!, by };
      out[m.i] = { url: storage.urlFor(w.key, s, w.variant), expiresAt: m.end * 1000 };
      signed.push({ id: w.id, sig: s });
    }
    // Built and sent once this turn's answer is written, as the gateway's write-back
    // (server/src/urls/signer.ts).
    setImmediate(() => {
      const write = redis.pipeline();
      for (const { id, sig } of signed)
        write.set(keys.url(id), encodeSignature(sig), 'PX', Math.max(1, sig.end * 1000 - now));
      write
        .exec()
        .catch((err: Error) => process.stderr.write(`reference write-back failed: ${err.message}\n`));
    });
  }
  return out;
}

const urlJson = (s: Signed) => ({ url: s.url, expiresAt: new Date(s.expiresAt).toISOString() });

async function page(req: IncomingMessage): Promise<string> {
  const rows = await rowsOf(req, PAGE_SQL);
  const urls = await urlsOf(rows.map((r) => ({ id: r.id, key: r.object_key })));
  return JSON.stringify({
    data: {
      images: { edges: rows.map((r, i) => ({ node: { id: r.id, signedUrl: urlJson(urls[i]!) } })) },
    },
  });
}

/** Scenario 14's page: original, thumb (the srcset's 1x entry) and the srcset, per image. */
async function variantPage(req: IncomingMessage): Promise<string> {
  const rows = await rowsOf(req, VARIANT_PAGE_SQL);
  const plans = rows.map((r) =>
    catalog.srcsetPlan(
      {
        id: r.id,
        objectKey: r.object_key,
        contentType: r.content_type,
        width: r.width,
        height: r.height,
        // One region: where the object lives does not enter its URL.
        homeRegion: null,
        replicatedRegions: [],
        createdAt: r.created_at,
      },
      PRESET,
      config.defaultMinTtlSeconds,
    ),
  );
  // Each distinct URL once: the original, then the srcset's entries (its first is the thumb).
  const wants: Want[] = [];
  const at = new Map<string, number>();
  const want = (w: Want) => {
    let i = at.get(w.id);
    if (i === undefined) {
      i = wants.push(w) - 1;
      at.set(w.id, i);
    }
    return i;
  };
  const slots = rows.map((r, n) => ({
    original: want({ id: r.id, key: r.object_key }),
    entries: plans[n]!.requests.map((q) => want({ id: q.id, key: q.key, variant: q.variant })),
  }));
  const urls = await urlsOf(wants);
  return JSON.stringify({
    data: {
      images: {
        edges: rows.map((r, n) => {
          const s = slots[n]!;
          return {
            node: {
              id: r.id,
              signedUrl: urlJson(urls[s.original]!),
              thumb: urlJson(urls[s.entries[0]!]!),
              srcset: plans[n]!.join(s.entries.map((i) => urls[i]!.url)),
            },
          };
        }),
      },
    },
  });
}

const server = createServer((req, res) => {
  (req.url === '/variants' ? variantPage(req) : page(req)).then(
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
