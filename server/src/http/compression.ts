import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

/**
 * Compressed answers for what the gateway serves from files or memory: the built web app
 * (`static-app.ts`) and the GraphiQL page (`graphiql.ts`). GraphQL's JSON answers are compressed
 * per answer by `graphql-compression.ts`, which takes its coding from `negotiateEncoding` here.
 *
 * Each body is compressed once per version and coding, on first demand, with node:zlib's
 * asynchronous calls: the work runs on libuv's threadpool, so no request ever holds the event
 * loop in zlib, and requests arriving while it runs wait for the same promise. The results stay
 * in a bounded in-memory cache. Files precompressed at build time would spare even that first
 * compression, but they would tie the gateway to one web build's layout and go stale beside a
 * file edited by hand; the app is a few hundred kilobytes and the cache holds it whole.
 */

export type Coding = 'br' | 'gzip';
export type ChosenCoding = Coding | 'identity';

/** Codings we produce, best first: on equal weights the smaller answer wins. */
const OURS: readonly Coding[] = ['br', 'gzip'];

/** An RFC 9110 qvalue: 0 to 1 with at most three decimals. */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The content coding to answer with (RFC 9110 §12.5.3). A coding the header names takes its
 * weight, one it does not takes `*`'s, else it is refused; q=0 refuses; a malformed weight drops
 * its entry; a coding named twice takes its lower weight. Among br and gzip the heavier wins, br
 * on a tie (header order carries no preference). `identity` is the answer when neither is
 * acceptable, when the header is absent or empty, or when the client weighs `identity` above
 * both; it is sent even when refused (`identity;q=0`), as the RFC advises over a 406.
 */
export function negotiateEncoding(header: string | null | undefined): ChosenCoding {
  if (!header) return 'identity';
  const weights = new Map<string, number>();
  for (const entry of header.split(',')) {
    const [name = '', ...params] = entry.split(';');
    let coding = name.trim().toLowerCase();
    if (coding === '') continue;
    if (coding === 'x-gzip') coding = 'gzip'; // RFC 9110 §8.4.1.3: the same coding
    let weight: number | undefined = 1;
    for (const param of params) {
      const eq = param.indexOf('=');
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
      const value = param.slice(eq + 1).trim();
      weight = QVALUE.test(value) ? Number(value) : undefined;
    }
    if (weight === undefined) continue;
    weights.set(coding, Math.min(weight, weights.get(coding) ?? 1));
  }
  const star = weights.get('*');
  let best: ChosenCoding = 'identity';
  let bestWeight = 0;
  for (const coding of OURS) {
    const w = weights.get(coding) ?? star ?? 0;
    if (w > bestWeight) {
      best = coding;
      bestWeight = w;
    }
  }
  // `*` stands for identity too when the header does not name it (`br;q=0.1, *`: identity).
  const identity = weights.get('identity') ?? star;
  return identity !== undefined && identity > bestWeight ? 'identity' : best;
}

/**
 * Content types worth compressing: text (HTML, scripts, styles, JSON, source maps, SVG). Raster
 * images and woff2 fonts are compressed formats already; zlib would spend CPU to gain nothing.
 */
const TEXT_TYPES = /^(?:text\/|application\/(?:json|javascript|xml|manifest\+json)\b|image\/svg\+xml\b)/;

/** Under a kilobyte, an answer fits a packet or two either way: not worth a coding. */
export const MIN_COMPRESSIBLE_BYTES = 1024;

/**
 * Above this, a file is sent as it is: compressing it would hold a threadpool thread for long, and
 * its compressed forms would crowd the cache (the web app's largest file, a source map, is 1.7 MB).
 */
export const MAX_COMPRESSIBLE_BYTES = 8 * 1024 * 1024;

/** Whether a body of this type and size is worth compressing at all. */
export function worthCompressing(contentType: string, size: number): boolean {
  return size >= MIN_COMPRESSIBLE_BYTES && size <= MAX_COMPRESSIBLE_BYTES && TEXT_TYPES.test(contentType);
}

export type Compress = (body: Buffer, coding: Coding) => Promise<Buffer>;

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/**
 * Brotli's quality by size, for about 100 ms of one threadpool thread at most on the files the
 * web app ships (measured on the app's 283 KB main script: quality 9 in ~70 ms, 84.7 KB; 11 would
 * take ~520 ms for 79 KB, and ~13 s for the 9 MB GraphiQL page, where 5 takes ~330 ms).
 */
function brotliQuality(size: number): number {
  if (size <= 64 * 1024) return 11;
  if (size <= 1024 * 1024) return 9;
  return 5;
}

/** node:zlib's asynchronous gzip (level 6: level 9 saves 0.1 % here for twice the time) and brotli. */
export const compress: Compress = (body, coding) =>
  coding === 'gzip'
    ? gzipAsync(body, { level: 6, chunkSize: 64 * 1024 })
    : brotliAsync(body, {
        chunkSize: 64 * 1024,
        params: {
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_QUALITY]: brotliQuality(body.length),
          [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        },
      });

/** What an entry costs besides its body (its key, version and bookkeeping), so the bound counts entries too. */
const ENTRY_OVERHEAD_BYTES = 256;

export interface CompressionCache {
  /**
   * `key`'s body in `coding`, compressed once per `version` (a file's size and mtime, a page's
   * hash): concurrent calls share one compression. Undefined when the coding does not pay (under
   * a tenth smaller): send the body as it is. `load` reads the body; if it rejects, so does this,
   * and nothing is kept.
   */
  get(key: string, version: string, coding: Coding, load: () => Promise<Buffer>): Promise<Buffer | undefined>;
}

interface Entry {
  version: string;
  body: Promise<Buffer | undefined>;
  /** Counted once settled; until then the entry is not evicted (its waiters share it). */
  bytes: number | undefined;
}

/**
 * A least-recently-used cache of compressed bodies, bounded by their bytes (`maxBytes`, 32 MiB by
 * default: the web app compresses to about 1 MB in both codings, its source map most of it). An
 * entry for a key whose version changed is replaced, not kept beside the new one. `compress` is
 * injectable for tests.
 */
export function createCompressionCache(
  options: { maxBytes?: number; compress?: Compress } = {},
): CompressionCache {
  const maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  const run = options.compress ?? compress;
  const entries = new Map<string, Entry>();
  let total = 0;

  const drop = (k: string, e: Entry) => {
    entries.delete(k);
    if (e.bytes !== undefined) total -= e.bytes;
  };
  const evict = () => {
    for (const [k, e] of entries) {
      if (total <= maxBytes) return;
      if (e.bytes !== undefined) drop(k, e);
    }
  };

  return {
    get(key, version, coding, load) {
      const k = `${coding}:${key}`;
      const hit = entries.get(k);
      if (hit?.version === version) {
        // Most recently used last: eviction walks the map from its oldest entry.
        entries.delete(k);
        entries.set(k, hit);
        return hit.body;
      }
      if (hit) drop(k, hit);
      const entry: Entry = { version, bytes: undefined, body: Promise.resolve(undefined) };
      entry.body = load()
        .then(async (source) => {
          const out = await run(source, coding);
          return out.length <= source.length * 0.9 ? out : undefined;
        })
        .then(
          (out) => {
            if (entries.get(k) === entry) {
              entry.bytes = (out?.length ?? 0) + ENTRY_OVERHEAD_BYTES;
              total += entry.bytes;
              evict();
            }
            return out;
          },
          (err: unknown) => {
            if (entries.get(k) === entry) entries.delete(k);
            throw err;
          },
        );
      entries.set(k, entry);
      return entry.body;
    },
  };
}
