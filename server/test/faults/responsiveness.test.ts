import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxyTokens } from '../../src/auth/proxy-token.js';
import { localSignature } from '../../src/storage/local.js';
import {
  JPEG_5x3,
  makeAvif,
  makeGif,
  makePng,
  makeWebpExtended,
  pngDeclaring,
  SVG,
  WEBP_LOSSLESS_5x3,
  WEBP_LOSSY_5x3,
} from '../fixtures/images.js';
import { createTestDatabase } from '../support/database.js';
import { TEST_JWT_SECRET, testRedisUrl } from '../support/env.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { type RawResponse, rawRequest } from '../support/hostile.js';
import { CLIENT_CODES } from '../support/raw-graphql.js';
import { UPLOAD_MUTATION } from '../support/upload.js';

// The responsiveness guard: for 30 s a few concurrent senders feed the real gateway (a child
// process running the real entry point, on PostgreSQL, Redis and the local driver with SVG
// allowed and auth on) hostile input of every kind it accepts, while a probe in a worker thread
// of this process GETs /healthz every 20 ms. The point is not throughput: it is that no single
// request, however crafted, holds the gateway's event loop. Asserted: /healthz p99 < 50 ms and
// max < 250 ms, the gateway's own event-loop delay (monitorEventLoopDelay, read from its /metrics)
// p99 < 50 ms and max < 250 ms, no 5xx, and every answer well-formed (no reset, no hang).
//
// Inputs come from fast-check with a fixed seed (RESPONSIVENESS_SEED to change it). A case is
// named <category>/<n>: the n-th value fast-check draws from that category's arbitrary with the
// seed seedOf(category), i.e. fc.sample(arbitrary, { seed, path: String(n), numRuns: 1 }) (the
// same seed and path fc.assert would print), made when it is sent. Each request carries
// `x-request-id: guard-<name>`,
// so a failure is printed with its input, the answer and the gateway's log lines for it.
// RESPONSIVENESS_CASE=<name> sends that one case alone (after the same setup) and checks it.
// The other hostile-*.test.ts files keep their generators module-local (importing a test file
// would run its suite), so the generators here are this file's own, aimed at what can stall.

const SEED = Number(process.env.RESPONSIVENESS_SEED ?? 20_260_112);
const REPLAY = process.env.RESPONSIVENESS_CASE;
const DURATION_MS = 30_000;
/** Requests in flight at once: moderate on purpose (a 2-core machine runs the whole stack). */
const SENDERS = 4;
const PROBE_INTERVAL_MS = 20;
/** No answer by then is a hang, reported as such. */
const REQUEST_TIMEOUT_MS = 15_000;

const PROXY_SECRET = 'guard-proxy-secret-0123456789abcdef';
const LOCAL_SECRET = 'guard-local-bucket-secret-0123456789';
const METRICS_TOKEN = 'guard-metrics-token-0123456789';
const OTHER_SECRET = 'not-the-gateway-secret-0123456789abcdef';
/** The gateway's GRAPHQL_MAX_BODY_BYTES (its default). */
const GRAPHQL_MAX_BODY_BYTES = 1024 * 1024;

const CATEGORIES = ['graphql', 'upload', 'range', 'proxy', 'bucket', 'jwt'] as const;
type Category = (typeof CATEGORIES)[number];

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /**
   * Why the gateway may answer before reading the body and close the connection (a client still
   * writing then sees EPIPE or a reset): that cut is deliberate, not a failure.
   */
  cut?: string;
}

interface Case {
  /** What the input is, short enough to print. */
  label: string;
  req: Req;
}

interface Seeded {
  id: string;
  format: string;
  bytes: Buffer;
  key: string;
  /** Paths with their query strings, as the gateway handed them out. */
  stream: string;
  redirect: string;
  bucket: string;
}

interface Targets {
  alice: string;
  bob: string;
  images: Seeded[];
  /** An image of bob's: alice's requests must not reach it. */
  theirs: Seeded;
}

const seedOf = (category: Category) => (SEED + CATEGORIES.indexOf(category) * 1_000_003) | 0;

// ---------------------------------------------------------------------------------------------
// Small builders

const b64u = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HMAC JWT built by hand, so headers and claims can be anything (jose would refuse most). */
function jwt(header: unknown, payload: unknown, secret: string | null, hash = 'sha256'): string {
  const head = `${b64u(header)}.${b64u(payload)}`;
  return secret === null
    ? `${head}.`
    : `${head}.${createHmac(hash, secret).update(head).digest('base64url')}`;
}

const nowS = () => Math.floor(Date.now() / 1000);
const bearer = (sub: string, claims: Record<string, unknown> = {}) =>
  jwt({ alg: 'HS256', typ: 'JWT' }, { sub, iat: nowS(), exp: nowS() + 3600, ...claims }, TEST_JWT_SECRET);

/** Header values: printable ASCII only (the client refuses anything else before sending). */
const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '~');
/** Paths: what the client would refuse is percent-encoded as UTF-8, the rest goes raw. */
const rawPath = (s: string) =>
  s.replace(/[^\u0021-\u007e]/gu, (c) =>
    [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );

const pathOf = (u: string) => {
  const url = new URL(u);
  return `${url.pathname}${url.search}`;
};

const BOUNDARY = 'guard-boundary-Xk29fQ';

interface Part {
  name: string;
  filename?: string;
  type?: string;
  body: Buffer;
  /** Replaces the whole part header block (for broken part headers). */
  rawHeaders?: string;
}

function multipart(parts: readonly Part[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const headers =
      p.rawHeaders ??
      `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\n${headers}\r\n`), p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const operations = Buffer.from(JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } }));
const fileMap = Buffer.from(JSON.stringify({ 0: ['variables.file'] }));

function uploadReq(file: Buffer, token: string | null, opts: { parts?: Part[]; csrf?: boolean } = {}): Req {
  const body = multipart(
    opts.parts ?? [
      { name: 'operations', body: operations },
      { name: 'map', body: fileMap },
      { name: '0', filename: 'upload.bin', type: 'application/octet-stream', body: file },
    ],
  );
  return {
    method: 'POST',
    path: '/graphql',
    headers: {
      'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      ...(opts.csrf === false ? {} : { 'x-graphql-yoga-csrf': '1' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body,
    ...(token ? {} : { cut: 'an anonymous upload is refused before its body is read' }),
    ...(opts.csrf === false ? { cut: 'a request without the CSRF header is refused unread' } : {}),
  };
}

function graphqlReq(body: string | Buffer, headers: Record<string, string>, token: string | null): Req {
  return {
    method: 'POST',
    path: '/graphql',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: typeof body === 'string' ? Buffer.from(body) : body,
    ...(body.length > GRAPHQL_MAX_BODY_BYTES ? { cut: 'a body over the limit is refused unread' } : {}),
  };
}

const u16be = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32be = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const box = (type: string, body: Buffer) =>
  Buffer.concat([u32be(body.length + 8), Buffer.from(type, 'latin1'), body]);

// ---------------------------------------------------------------------------------------------
// GraphQL bodies

/** Any JSON value a client could send where the schema wants something else. */
const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, -1, 101, 10_001, 2 ** 31, 2 ** 53, 1e308, -1e-7, Number.MAX_SAFE_INTEGER),
  fc.double({ noNaN: true }),
  fc.string({ maxLength: 50 }),
  fc.nat(200_000).map((n) => 'x'.repeat(n)),
  fc.uuid(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.oneof(fc.integer(), fc.string(), fc.uuid()), { maxLength: 8 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), fc.string()), { maxKeys: 4 }),
  fc.nat(2000).map((n) => JSON.parse(`${'['.repeat(n)}1${']'.repeat(n)}`) as unknown),
);

function idLike(t: Targets): fc.Arbitrary<unknown> {
  const own = t.images.map((i) => i.id);
  return fc.oneof(
    fc.constantFrom(...own),
    fc.constant(t.theirs.id),
    fc.uuid(),
    fc.constantFrom(...own).map((id) => id.toUpperCase()),
    fc.string({ maxLength: 40 }),
    fc.constantFrom('', '../../etc/passwd', "'; drop table images; --", '\u0000', '🙂'.repeat(36)),
    fc.nat(100_000).map((n) => 'a'.repeat(n)),
    jsonValue,
  );
}

const OPS = [
  {
    name: 'images',
    doc: 'query($first: Int, $after: String, $minTtl: Int) { images(first: $first, after: $after) { totalCount pageInfo { endCursor } edges { cursor node { id key signedUrl(minTtl: $minTtl) { url } proxyUrl(mode: STREAM) urlStatus { cached } } } } }',
    vars: (t: Targets) =>
      fc.record({
        first: fc.oneof(jsonValue, fc.integer({ min: -5, max: 150 })),
        after: fc.oneof(
          jsonValue,
          fc.string({ maxLength: 400 }).map((s) => Buffer.from(s).toString('base64url')),
          fc
            .tuple(fc.nat(), idLike(t))
            .map(([n, id]) => Buffer.from(`${n}:${String(id)}`).toString('base64url')),
        ),
        minTtl: fc.oneof(jsonValue, fc.integer({ min: -10, max: 100_000 })),
      }),
  },
  {
    name: 'image',
    doc: 'query($id: ID!) { image(id: $id) { id byteSize signedUrl { url } proxyUrl } }',
    vars: (t: Targets) => fc.record({ id: idLike(t) }),
  },
  {
    name: 'imagesByIds',
    doc: 'query($ids: [ID!]!) { imagesByIds(ids: $ids) { id urlStatus { accessCount } } }',
    vars: (t: Targets) =>
      fc.record({
        ids: fc.oneof(
          fc.array(idLike(t), { maxLength: 40 }),
          fc.integer({ min: 1, max: 2000 }).map((n) => Array.from({ length: n }, () => randomUUID())),
          jsonValue,
        ),
      }),
  },
  {
    name: 'refreshSignedUrls',
    doc: 'mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }',
    vars: (t: Targets) => fc.record({ ids: fc.oneof(fc.array(idLike(t), { maxLength: 12 }), jsonValue) }),
  },
  {
    name: 'preloadSignedUrls',
    doc: 'mutation($ids: [ID!]!) { preloadSignedUrls(ids: $ids) }',
    vars: (t: Targets) =>
      fc.record({
        ids: fc.oneof(
          fc.array(idLike(t), { maxLength: 20 }),
          fc
            .integer({ min: 1, max: 10_050 })
            .map((n) => Array.from({ length: n }, (_, i) => t.images[i % t.images.length]!.id)),
          jsonValue,
        ),
      }),
  },
  {
    // Never one of alice's own ids: the seeded images are the other categories' targets.
    name: 'deleteImage',
    doc: 'mutation($id: ID!) { deleteImage(id: $id) }',
    vars: (t: Targets) => fc.record({ id: fc.oneof(fc.constant(t.theirs.id), fc.uuid(), jsonValue) }),
  },
  {
    name: 'urlStats',
    doc: 'query($days: Int) { urlStats(days: $days) { requests hitRate days { date } workers { id } } }',
    vars: () => fc.record({ days: fc.oneof(jsonValue, fc.integer({ min: -5, max: 400 })) }),
  },
];

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-16',
  'application/graphql+json',
  'application/graphql',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  '',
];

function graphqlCases(t: Targets): fc.Arbitrary<Case> {
  const token = fc.constantFrom<string | null>(t.alice, t.alice, t.alice, t.bob, null);
  const post = (
    label: string,
    body: string | Buffer,
    tok: string | null,
    headers: Record<string, string> = {},
  ) => ({
    label,
    req: graphqlReq(body, headers, tok),
  });
  const doc = (label: string, query: fc.Arbitrary<string>) =>
    fc
      .tuple(query, token)
      .map(([q, tok]) => post(`${label} (${q.length} chars)`, JSON.stringify({ query: q }), tok));

  const wrongTypes = fc
    .constantFrom(...OPS)
    .chain((op) => fc.tuple(fc.constant(op), op.vars(t), token))
    .map(([op, vars, tok]) =>
      post(
        `${op.name} with ${JSON.stringify(vars).slice(0, 80)}`,
        JSON.stringify({ query: op.doc, variables: vars }),
        tok,
      ),
    );
  const deep = fc.oneof(
    fc.nat(6000).map((n) => `{ viewer { ${'... on Viewer { '.repeat(n)} id ${'} '.repeat(n)} } }`),
    fc.nat(6000).map((n) => `{ ${'images { edges { node { '.repeat(n)} id ${'} } } '.repeat(n)}}`),
    fc.nat(20_000).map((n) => `{ imagesByIds(ids: ${'['.repeat(n)}"x"${']'.repeat(n)}) { id } }`),
    fc.nat(20_000).map((n) => `${'{'.repeat(n)}${'}'.repeat(n)}`),
  );
  const aliases = fc.oneof(
    fc
      .integer({ min: 11, max: 20_000 })
      .map((n) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`),
    fc
      .integer({ min: 2, max: 300 })
      .map(
        (n) =>
          `{ images(first: 100) { edges { node { ${Array.from({ length: n }, (_, i) => `s${i}: signedUrl { url }`).join(' ')} } } } }`,
      ),
    fc.integer({ min: 11, max: 5000 }).map((n) => `{ viewer ${'@include(if: true) '.repeat(n)}{ id } }`),
  );
  // Each fragment spreads the previous one twice: 2^n fields once expanded, from a few hundred tokens.
  const fragments = fc.tuple(fc.integer({ min: 1, max: 60 }), fc.boolean()).map(([n, aliased]) => {
    const defs = [`fragment F0 on Query { viewer { id } images(first: 100) { totalCount } }`];
    for (let i = 1; i <= n; i++)
      defs.push(
        aliased
          ? `fragment F${i} on Query { a${i}: viewer { id } ...F${i - 1} ...F${i - 1} }`
          : `fragment F${i} on Query { ...F${i - 1} ...F${i - 1} }`,
      );
    return `query { ...F${n} } ${defs.join(' ')}`;
  });
  const cycles = fc
    .integer({ min: 2, max: 200 })
    .map(
      (n) =>
        `{ ...C0 } ${Array.from({ length: n }, (_, i) => `fragment C${i} on Query { viewer { id } ...C${(i + 1) % n} }`).join(' ')}`,
    );
  const manyVars = fc
    .integer({ min: 1, max: 3000 })
    .map(
      (n) => `query(${Array.from({ length: n }, (_, i) => `$v${i}: [ID!]`).join(', ')}) { viewer { id } }`,
    );
  const introspection = fc.oneof(
    fc.constant('{ __schema { types { name fields { name args { name } } } } }'),
    fc.nat(400).map((n) => `{ __type(name: "Image") { ${'ofType { '.repeat(n)} name ${'} '.repeat(n)}} }`),
    fc.constant('{ __typename viewer { __typename id } }'),
  );
  const words = [
    '{',
    '}',
    '(',
    ')',
    ':',
    '$',
    '...',
    '@',
    '[',
    ']',
    '!',
    '=',
    'query',
    'mutation',
    'fragment',
    'on',
    'images',
    'image',
    'viewer',
    'id',
    '"x"',
    '"""b"""',
    '1.5e999',
    'null',
    '__schema',
    '# c\n',
    'Image',
    'ID!',
  ];
  const soup = fc.array(fc.constantFrom(...words), { maxLength: 2000 }).map((w) => w.join(' '));
  const longStrings = fc.oneof(
    fc.nat(900_000).map((n) => `{ image(id: "${'x'.repeat(n)}") { id } }`),
    fc.nat(900_000).map((n) => `{ viewer { id } } # ${'c'.repeat(n)}`),
    fc
      .nat(900_000)
      .map((n) => `{ images(after: """${'"'.repeat(Math.min(n, 2))}${'q'.repeat(n)}""") { totalCount } }`),
    fc.integer({ min: 1_048_000, max: 1_300_000 }).map((n) => `{ viewer { id } } #${'p'.repeat(n)}`),
  );
  const brokenJson = fc.oneof(
    fc
      .tuple(fc.constantFrom(...OPS), fc.nat(400))
      .map(([op, n]) => JSON.stringify({ query: op.doc }).slice(0, n)),
    // Nesting up to what fits in GRAPHQL_MAX_BODY_BYTES: unterminated, in a used variable, in an
    // unused one and in extensions, and objects.
    fc.nat(1_040_000).map((n) => `{"query":"{ viewer { id } }","variables":{"a":${'['.repeat(n)}`),
    fc
      .nat(520_000)
      .map(
        (n) =>
          `{"query":"query($ids: [ID!]!) { imagesByIds(ids: $ids) { id } }","variables":{"ids":${'['.repeat(n)}${']'.repeat(n)}}}`,
      ),
    fc
      .nat(520_000)
      .map((n) => `{"query":"{ viewer { id } }","extensions":{"x":${'['.repeat(n)}${']'.repeat(n)}}}`),
    fc.nat(170_000).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
    fc.constantFrom(
      '{"query":"{ viewer { id } }", "variables": 1e999999}',
      '{"query":"\\u12"}',
      '{"query": "{ viewer { id } }",}',
      '{"query"',
      'null',
      '[]',
      '""',
      '{"query": 12}',
      '{"query": ["{ viewer { id } }"]}',
      '{"query": {"kind": "Document"}}',
      '{"query": "{ viewer { id } }", "variables": "{\\"a\\":1}"}',
      '{"query": "{ viewer { id } }", "operationName": {"x": 1}}',
      '{"query": "{ viewer { id } }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "00"}}}',
      '{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}',
      '{"__proto__": {"query": "{ viewer { id } }"}}',
    ),
    fc.uint8Array({ maxLength: 4000 }).map((b) => Buffer.from(b).toString('latin1')),
    fc.nat(200).map((n) => JSON.stringify(Array.from({ length: n }, () => ({ query: '{ viewer { id } }' })))),
  );

  return fc.oneof(
    { weight: 4, arbitrary: wrongTypes },
    { weight: 2, arbitrary: doc('deep nesting', deep) },
    { weight: 2, arbitrary: doc('aliases/directives', aliases) },
    { weight: 2, arbitrary: doc('fragment expansion', fragments) },
    { weight: 1, arbitrary: doc('fragment cycle', cycles) },
    { weight: 1, arbitrary: doc('many variables', manyVars) },
    { weight: 1, arbitrary: doc('introspection', introspection) },
    { weight: 2, arbitrary: doc('token soup', soup) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(longStrings, token)
        .map(([q, tok]) => post(`long strings (${q.length} chars)`, JSON.stringify({ query: q }), tok)),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(brokenJson, fc.constantFrom(...CONTENT_TYPES), token, fc.boolean())
        .map(([body, type, tok, csrf]) =>
          post(
            `broken body as ${type || 'no type'}${csrf ? ' + CSRF header' : ''} (${body.length} bytes): ${body.slice(0, 60)}`,
            Buffer.from(body, 'latin1'),
            tok,
            { 'content-type': type, ...(csrf ? { 'x-graphql-yoga-csrf': '1' } : {}) },
          ),
        ),
    },
    {
      // Forms carry their variables as JSON too, raw or percent-encoded, up to the body limit.
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(
            fc.nat(520_000).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
            fc.nat(170_000).map((n) => `${'%5B'.repeat(n)}${'%5D'.repeat(n)}`),
            fc.string({ maxLength: 200 }).map(encodeURIComponent),
          ),
          token,
        )
        .map(([vars, tok]) =>
          post(
            `form body, variables of ${vars.length} chars: ${vars.slice(0, 30)}`,
            `query=${encodeURIComponent('query($x: [ID!]) { viewer { id } }')}&variables=${vars}`,
            tok,
            { 'content-type': 'application/x-www-form-urlencoded', 'x-graphql-yoga-csrf': '1' },
          ),
        ),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.oneof(soup, deep, aliases, fragments, fc.string({ maxLength: 300 })), jsonValue, token)
        .map(([q, vars, tok]) => {
          const qs = new URLSearchParams({ query: q, variables: JSON.stringify(vars) ?? '' }).toString();
          return {
            label: `GET /graphql (${qs.length} chars of query string)`,
            req: {
              method: 'GET',
              path: `/graphql?${qs}`,
              headers: { accept: 'application/json', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
            },
          };
        }),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Uploads of every sniffed type, mutated

const BASES: { format: string; bytes: Buffer }[] = [
  { format: 'png', bytes: makePng(6, 4, [255, 94, 58], [0, 122, 255]) },
  { format: 'jpeg', bytes: JPEG_5x3 },
  { format: 'gif', bytes: makeGif(7, 5) },
  { format: 'webp', bytes: WEBP_LOSSY_5x3 },
  { format: 'webp', bytes: WEBP_LOSSLESS_5x3 },
  { format: 'webp', bytes: makeWebpExtended() },
  { format: 'avif', bytes: makeAvif() },
  { format: 'svg', bytes: SVG },
];

interface FileCase {
  what: string;
  bytes: Buffer;
}

const repeat = (b: Buffer, n: number) => Buffer.concat(Array.from({ length: n }, () => b));

/** Every format's own way of being long: repeated markers, chunks, blocks or boxes. */
const repeated: fc.Arbitrary<FileCase> = fc.oneof(
  fc.integer({ min: 1, max: 30_000 }).map((n) => ({
    what: `jpeg: ${n} COM segments before the frame`,
    bytes: Buffer.concat([
      JPEG_5x3.subarray(0, 2),
      repeat(Buffer.from([0xff, 0xfe, 0, 4, 0x61, 0x62]), n),
      JPEG_5x3.subarray(2),
    ]),
  })),
  fc.integer({ min: 1, max: 60_000 }).map((n) => ({
    what: `jpeg: ${n} RST markers`,
    bytes: Buffer.concat([
      JPEG_5x3.subarray(0, 2),
      repeat(Buffer.from([0xff, 0xd0]), n),
      JPEG_5x3.subarray(2),
    ]),
  })),
  fc.integer({ min: 1, max: 300_000 }).map((n) => ({
    what: `jpeg: ${n} fill bytes`,
    bytes: Buffer.concat([JPEG_5x3.subarray(0, 2), Buffer.alloc(n, 0xff), JPEG_5x3.subarray(2)]),
  })),
  fc.integer({ min: 1, max: 9_000_000 }).map((n) => ({
    // The metadata strip walks the scan to the image's end: stuffed bytes all the way.
    what: `jpeg: a scan of ${n} stuffed 0xff bytes, then an appended trailer`,
    bytes: Buffer.concat([
      JPEG_5x3.subarray(0, -2),
      Buffer.alloc(2 * n).fill(Buffer.from([0xff, 0x00])),
      Buffer.from([0xff, 0xd9]),
      Buffer.from('trailer'),
    ]),
  })),
  fc.integer({ min: 1, max: 4000 }).map((n) => {
    // An APP1 Exif segment whose IFD claims 65535 entries.
    const tiff = Buffer.concat([
      Buffer.from('MM\0\x2a\0\0\0\x08', 'latin1'),
      u16be(0xffff),
      Buffer.alloc(Math.min(n * 12, 65_000)),
    ]);
    const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
    const seg = Buffer.concat([Buffer.from([0xff, 0xe1]), u16be(payload.length + 2), payload]);
    return {
      what: `jpeg: Exif IFD of 65535 entries (${n})`,
      bytes: Buffer.concat([JPEG_5x3.subarray(0, 2), seg, JPEG_5x3.subarray(2)]),
    };
  }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => {
    const png = BASES[0]!.bytes;
    const chunk = Buffer.concat([u32be(4), Buffer.from('tEXtabcd', 'latin1'), u32be(0)]);
    return {
      what: `png: ${n} tEXt chunks after IHDR`,
      bytes: Buffer.concat([png.subarray(0, 33), repeat(chunk, n), png.subarray(33)]),
    };
  }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => {
    const png = BASES[0]!.bytes;
    return {
      what: `png: IHDR repeated ${n} times`,
      bytes: Buffer.concat([png.subarray(0, 8), repeat(png.subarray(8, 33), n), png.subarray(33)]),
    };
  }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => {
    const gif = BASES[2]!.bytes;
    const comment = Buffer.from([0x21, 0xfe, 3, 0x61, 0x62, 0x63, 0]);
    return {
      what: `gif: ${n} comment extensions`,
      bytes: Buffer.concat([gif.subarray(0, 25), repeat(comment, n), gif.subarray(25)]),
    };
  }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => {
    const webp = makeWebpExtended();
    const chunks = repeat(
      Buffer.concat([Buffer.from('XTRA', 'latin1'), Buffer.from([4, 0, 0, 0]), Buffer.alloc(4)]),
      n,
    );
    const body = Buffer.concat([webp.subarray(8, 30), chunks, webp.subarray(30)]);
    const riff = Buffer.alloc(8);
    riff.write('RIFF', 0, 'latin1');
    riff.writeUInt32LE(body.length, 4);
    return { what: `webp: ${n} unknown chunks after VP8X`, bytes: Buffer.concat([riff, body]) };
  }),
  fc.integer({ min: 1, max: 60_000 }).map((n) => {
    const avif = makeAvif();
    const ftypEnd = avif.readUInt32BE(0);
    return {
      what: `avif: ${n} free boxes before meta`,
      bytes: Buffer.concat([
        avif.subarray(0, ftypEnd),
        repeat(box('free', Buffer.alloc(0)), n),
        avif.subarray(ftypEnd),
      ]),
    };
  }),
  fc.integer({ min: 1, max: 60_000 }).map((n) => {
    const avif = Buffer.from(makeAvif());
    const metaAt = avif.readUInt32BE(0);
    const metaSize = avif.readUInt32BE(metaAt);
    const inner = repeat(box('free', Buffer.alloc(0)), n);
    const head = Buffer.from(avif.subarray(metaAt, metaAt + 12));
    head.writeUInt32BE(metaSize + inner.length, 0);
    return {
      what: `avif: ${n} free boxes inside meta`,
      bytes: Buffer.concat([avif.subarray(0, metaAt), head, inner, avif.subarray(metaAt + 12)]),
    };
  }),
  fc.integer({ min: 1, max: 250_000 }).map((n) => {
    const avif = makeAvif();
    const ftypEnd = avif.readUInt32BE(0);
    const ftyp = box(
      'ftyp',
      Buffer.concat([
        Buffer.from('mif1', 'latin1'),
        u32be(0),
        repeat(Buffer.from('heic', 'latin1'), n),
        Buffer.from('avif', 'latin1'),
      ]),
    );
    return { what: `avif: ftyp with ${n} brands`, bytes: Buffer.concat([ftyp, avif.subarray(ftypEnd)]) };
  }),
  fc.integer({ min: 1, max: 2000 }).map((n) => {
    // Boxes nested n deep, each the only child of the last.
    let inner = box('ispe', Buffer.alloc(12));
    for (let i = 0; i < n; i++) inner = box('meta', Buffer.concat([Buffer.alloc(4), inner]));
    const avif = makeAvif();
    const ftypEnd = avif.readUInt32BE(0);
    return { what: `avif: meta nested ${n} deep`, bytes: Buffer.concat([avif.subarray(0, ftypEnd), inner]) };
  }),
);

/** SVG prologs and root tags: what the sniffer and the size reader walk. */
const svgText: fc.Arbitrary<FileCase> = fc.oneof(
  fc
    .tuple(
      fc.oneof(fc.constant(60), fc.integer({ min: 1, max: 700 })),
      fc.constantFrom('x', '<svg width="4" height="3"/>', '', '<html>'),
    )
    .map(([k, tail]) => ({
      what: `svg: ${k}× "<!---->" prolog + ${JSON.stringify(tail)}`,
      bytes: Buffer.from(`${'<!---->'.repeat(k)}${tail}`),
    })),
  fc.integer({ min: 1, max: 2000 }).map((k) => ({
    what: `svg: ${k} processing instructions`,
    bytes: Buffer.from(`${'<?x?>'.repeat(k)}<svg/>`),
  })),
  fc.integer({ min: 1, max: 5000 }).map((k) => ({
    what: `svg: doctype with ${k} entities`,
    bytes: Buffer.from(
      `<!DOCTYPE svg [${'<!ENTITY a "&a;&a;">'.repeat(k)}]><svg width="1" height="1">&a;</svg>`,
    ),
  })),
  fc.integer({ min: 1, max: 12_000 }).map((k) => ({
    what: `svg: root tag with ${k} attributes`,
    bytes: Buffer.from(`<svg ${'a="b" '.repeat(k)}width="10" height="10"></svg>`),
  })),
  fc.integer({ min: 1, max: 120_000 }).map((k) => ({
    what: `svg: ${k} spaces inside the root tag`,
    bytes: Buffer.from(`<svg${' '.repeat(k)}width="1">`),
  })),
  fc.integer({ min: 1, max: 120_000 }).map((k) => ({
    what: `svg: unterminated attribute of ${k}`,
    bytes: Buffer.from(`<svg width="${'9'.repeat(k)}`),
  })),
  fc
    .integer({ min: 1, max: 120_000 })
    .map((k) => ({ what: `svg: unterminated comment of ${k}`, bytes: Buffer.from(`<!--${'-'.repeat(k)}`) })),
  fc
    .integer({ min: 1, max: 2_000_000 })
    .map((k) => ({ what: `svg: ${k} spaces before the root`, bytes: Buffer.from(`${' '.repeat(k)}<svg/>`) })),
  fc.integer({ min: 1, max: 20_000 }).map((k) => ({
    what: `svg: viewBox of ${k} numbers`,
    bytes: Buffer.from(`<svg viewBox="${'1 '.repeat(k)}"/>`),
  })),
  fc.tuple(fc.constantFrom('width', 'height'), fc.nat(400)).map(([a, k]) => ({
    what: `svg: ${a} of ${k} digits`,
    bytes: Buffer.from(
      `<svg ${a}="${'9'.repeat(k + 1)}" width="1e308" height="9e999" viewBox="0 0 1e308 1e308"/>`,
    ),
  })),
  fc.integer({ min: 1, max: 20_000 }).map((k) => ({
    what: `svg: BOM + ${k} nested comments-in-doctype`,
    bytes: Buffer.from(`\ufeff<!DOCTYPE svg [${'<!-- ] > -->'.repeat(k)}]><svg/>`),
  })),
);

const hugeDims: fc.Arbitrary<FileCase> = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
    .map(([w, h]) => ({ what: `png declaring ${w}×${h}`, bytes: pngDeclaring(w, h) })),
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([w, h]) => {
    const gif = Buffer.from(BASES[2]!.bytes);
    gif.writeUInt16LE(w, 6);
    gif.writeUInt16LE(h, 8);
    return { what: `gif declaring ${w}×${h}`, bytes: gif };
  }),
  fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([w, h]) => {
    const jpeg = Buffer.from(JPEG_5x3);
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.writeUInt16BE(h, sof + 5);
    jpeg.writeUInt16BE(w, sof + 7);
    return { what: `jpeg declaring ${w}×${h}`, bytes: jpeg };
  }),
  fc.tuple(fc.nat(0xffffff), fc.nat(0xffffff)).map(([w, h]) => {
    const webp = Buffer.from(makeWebpExtended());
    webp.writeUIntLE(w, 24, 3);
    webp.writeUIntLE(h, 27, 3);
    return { what: `webp declaring ${w + 1}×${h + 1}`, bytes: webp };
  }),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))
    .map(([w, h]) => ({ what: `avif declaring ${w}×${h}`, bytes: makeAvif({ width: w, height: h }) })),
  fc.tuple(fc.nat(), fc.nat()).map(([w, h]) => ({
    what: `svg declaring ${w}×${h}`,
    bytes: Buffer.from(`<svg width="${w}" height="${h}"/>`),
  })),
);

const mutatedBase: fc.Arbitrary<FileCase> = fc.constantFrom(...BASES).chain(({ format, bytes }) =>
  fc.oneof(
    fc.constant({ what: `${format} as is`, bytes }),
    fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 16 }).map((flips) => {
      const b = Buffer.from(bytes);
      for (const [i, bit] of flips) b[i % b.length]! ^= 1 << bit;
      return { what: `${format} with ${flips.length} bit flips`, bytes: b };
    }),
    fc.nat(bytes.length).map((n) => ({ what: `${format} truncated to ${n}`, bytes: bytes.subarray(0, n) })),
    fc.tuple(fc.nat(bytes.length), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([at, junk]) => ({
      what: `${format} with ${junk.length} bytes spliced at ${at}`,
      bytes: Buffer.concat([bytes.subarray(0, at), Buffer.from(junk), bytes.subarray(at)]),
    })),
    fc.integer({ min: 1, max: 3_000_000 }).map((n) => ({
      what: `${format} followed by ${n} bytes`,
      bytes: Buffer.concat([bytes, Buffer.alloc(n, 0x5a)]),
    })),
  ),
);

/** Up to the gateway's UPLOAD_MAX_BYTES (its default, 20 MiB): the largest file it takes. */
const UPLOAD_MAX_BYTES = 20 * 1024 * 1024;
const nearLimit: fc.Arbitrary<FileCase> = fc.constantFrom(...BASES).chain(({ format, bytes }) =>
  fc.integer({ min: UPLOAD_MAX_BYTES - 2_000_000, max: UPLOAD_MAX_BYTES + 1000 }).map((size) => ({
    what: `${format} padded to ${size} bytes`,
    bytes: Buffer.concat([bytes, Buffer.alloc(Math.max(0, size - bytes.length), 0x5a)]),
  })),
);

function uploadCases(t: Targets): fc.Arbitrary<Case> {
  const token = fc.constantFrom<string | null>(t.alice, t.alice, t.alice, t.alice, t.bob, null);
  const files = fc.oneof(
    { weight: 40, arbitrary: mutatedBase },
    { weight: 30, arbitrary: repeated },
    { weight: 30, arbitrary: svgText },
    { weight: 20, arbitrary: hugeDims },
    // Rare: a handful a run keeps the load moderate.
    { weight: 1, arbitrary: nearLimit },
    {
      weight: 10,
      arbitrary: fc
        .uint8Array({ maxLength: 4000 })
        .map((b) => ({ what: 'random bytes', bytes: Buffer.from(b) })),
    },
  );
  const asFile = fc.tuple(files, token).map(([f, tok]) => ({
    label: `upload: ${f.what} (${f.bytes.length} bytes)`,
    req: uploadReq(f.bytes, tok),
  }));
  const png = BASES[0]!.bytes;
  const envelopes = fc.oneof(
    fc.integer({ min: 1, max: 12_000 }).map((n) => ({
      label: `upload: filename with an unterminated quote of ${n}`,
      req: uploadReq(png, t.alice, {
        parts: [
          { name: 'operations', body: operations },
          { name: 'map', body: fileMap },
          {
            name: '0',
            body: png,
            rawHeaders: `Content-Disposition: form-data; name="0"; filename="${'a'.repeat(n)}\r\n`,
          },
        ],
      }),
    })),
    fc.integer({ min: 1, max: 14_000 }).map((n) => ({
      label: `upload: part header of ${n} bytes`,
      req: uploadReq(png, t.alice, {
        parts: [
          { name: 'operations', body: operations },
          { name: 'map', body: fileMap },
          {
            name: '0',
            body: png,
            rawHeaders: `Content-Disposition: form-data; name="0"; filename="a.png"\r\nX-Pad: ${'p'.repeat(n)}\r\n`,
          },
        ],
      }),
    })),
    fc.integer({ min: 2, max: 200 }).map((n) => ({
      label: `upload: ${n} file parts`,
      req: uploadReq(png, t.alice, {
        parts: [
          { name: 'operations', body: operations },
          {
            name: 'map',
            body: Buffer.from(
              JSON.stringify(
                Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), ['variables.file']])),
              ),
            ),
          },
          ...Array.from({ length: n }, (_, i) => ({ name: String(i), filename: 'a.png', body: png })),
        ],
      }),
    })),
    fc
      .oneof(
        fc.json({ maxDepth: 4 }),
        fc.nat(100_000).map((n) => `${'['.repeat(n)}`),
      )
      .map((m) => ({
        label: `upload: map ${m.slice(0, 40)}`,
        req: uploadReq(png, t.alice, {
          parts: [
            { name: 'operations', body: operations },
            { name: 'map', body: Buffer.from(m) },
            { name: '0', filename: 'a.png', body: png },
          ],
        }),
      })),
    fc.integer({ min: 60_000, max: 300_000 }).map((n) => ({
      label: `upload: operations field of ${n} bytes`,
      req: uploadReq(png, t.alice, {
        parts: [
          {
            name: 'operations',
            body: Buffer.from(
              JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null, pad: 'x'.repeat(n) } }),
            ),
          },
          { name: 'map', body: fileMap },
          { name: '0', filename: 'a.png', body: png },
        ],
      }),
    })),
    fc.constant({ label: 'upload: no CSRF header', req: uploadReq(png, t.alice, { csrf: false }) }),
    fc.constant({
      label: 'upload: declared Content-Length of 10^12',
      req: {
        ...uploadReq(png, t.alice),
        headers: { ...uploadReq(png, t.alice).headers, 'content-length': String(10 ** 12) },
        cut: 'a declared length over the limit is refused unread',
      },
    }),
  );
  return fc.oneof({ weight: 5, arbitrary: asFile }, { weight: 1, arbitrary: envelopes });
}

// ---------------------------------------------------------------------------------------------
// Range headers on /proxy/:id?mode=stream and /local-bucket

function rangeCases(t: Targets): fc.Arbitrary<Case> {
  const target = fc
    .tuple(fc.constantFrom(...t.images), fc.constantFrom('stream', 'bucket'))
    .map(([img, where]) => ({ img, where, path: where === 'stream' ? img.stream : img.bucket }));
  const digits = (n: number) => '9'.repeat(n);
  const spaces = fc.oneof(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 501, max: 7500 }));
  const header = (size: number) =>
    fc.oneof(
      fc.tuple(fc.nat(size * 2), fc.nat(size * 2)).map(([a, b]) => `bytes=${a}-${b}`),
      fc.nat(size * 2).map((a) => `bytes=${a}-`),
      fc.nat(size * 2).map((n) => `bytes=-${n}`),
      fc.constantFrom(
        'bytes=0-0',
        'bytes=-0',
        'bytes=',
        'bytes=-',
        'items=0-1',
        'BYTES = 1 - 2',
        'bytes=1.5-2',
        'bytes=0x10-',
        'bytes=\t1-2',
        'bytes=1-0',
      ),
      // Runs of spaces short enough to be parsed (a few hundred) and up to 7,500 a side.
      spaces.map((n) => `bytes=${' '.repeat(n)}-${' '.repeat(n)}x`),
      spaces.map((n) => `bytes=${' '.repeat(n)}0${' '.repeat(n)}-`),
      fc.integer({ min: 1, max: 15_000 }).map((n) => `bytes=0-${'\t'.repeat(n)}`),
      fc.integer({ min: 1, max: 15_000 }).map((n) => ' '.repeat(n)),
      fc
        .integer({ min: 2, max: 1000 })
        .map((n) => `bytes=${Array.from({ length: n }, (_, i) => `${i * 2}-${i * 2}`).join(',')}`),
      fc.integer({ min: 2, max: 1000 }).map((n) => `bytes=${'0-,'.repeat(n)}0-`),
      fc.integer({ min: 16, max: 7000 }).map((n) => `bytes=${digits(n)}-${digits(n)}`),
      fc.integer({ min: 16, max: 14_000 }).map((n) => `bytes=-${digits(n)}`),
      fc.integer({ min: 16, max: 14_000 }).map((n) => `bytes=0-${'0'.repeat(n)}1`),
      fc.string({ maxLength: 200 }).map(printable),
    );
  const etags = fc.oneof(
    fc.constantFrom('*', '""', 'W/""', '"x"'),
    fc.integer({ min: 1, max: 1500 }).map((n) => Array.from({ length: n }, (_, i) => `"e${i}"`).join(', ')),
    fc.integer({ min: 1, max: 14_000 }).map((n) => `W/${'W/'.repeat(n / 2)}"x"`),
    fc.string({ maxLength: 100 }).map(printable),
  );
  return target.chain(({ img, where, path }) =>
    fc
      .tuple(
        header(img.bytes.length),
        fc.option(etags, { nil: undefined }),
        fc.option(fc.string({ maxLength: 60 }).map(printable), { nil: undefined }),
        fc.constantFrom('GET', 'GET', 'HEAD'),
      )
      .map(([range, inm, ifRange, method]) => {
        const headers: Record<string, string> = { range };
        if (inm !== undefined) headers['if-none-match'] = inm;
        if (ifRange !== undefined) headers['if-range'] = ifRange;
        return {
          label: `${method} ${where} (${img.format}) Range ${JSON.stringify(range.slice(0, 40))} (${range.length} chars)${inm ? ` If-None-Match of ${inm.length}` : ''}`,
          req: { method, path, headers },
        };
      }),
  );
}

// ---------------------------------------------------------------------------------------------
// /proxy ids and tokens

function proxyCases(t: Targets): fc.Arbitrary<Case> {
  const mine = t.images;
  const tokenOf = (p: string) => new URL(p, 'http://x').searchParams.get('t')!;
  const expired = createProxyTokens({
    secrets: [{ kid: 'k0', secret: PROXY_SECRET }],
    ttlSeconds: 3600,
    clock: { now: () => Date.now() - 7_200_000 },
  });
  const neverExpiring = createProxyTokens({
    secrets: [{ kid: 'k0', secret: PROXY_SECRET }],
    ttlSeconds: 0,
    clock: { now: () => Date.now() },
  });
  const wrongKey = createProxyTokens({
    secrets: [{ kid: 'k0', secret: OTHER_SECRET }],
    ttlSeconds: 3600,
    clock: { now: () => Date.now() },
  });
  const unknownKid = createProxyTokens({
    secrets: [{ kid: 'k9', secret: PROXY_SECRET }],
    ttlSeconds: 3600,
    clock: { now: () => Date.now() },
  });

  const idArb = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...mine).map((i) => i.id) },
    { weight: 1, arbitrary: fc.constant(t.theirs.id) },
    { weight: 1, arbitrary: fc.uuid() },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 60 }),
        fc.constantFrom(
          '..',
          '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
          '..%2F..%2Fetc',
          '%00',
          '%',
          '%E0%A4%A',
          '//',
          '\\..\\',
          '%C0%AE%C0%AE',
        ),
        fc.nat(14_000).map((n) => 'f'.repeat(n)),
        fc
          .tuple(fc.constantFrom(...mine), fc.nat(35), fc.string({ maxLength: 2 }))
          .map(([i, at, s]) => i.id.slice(0, at) + s + i.id.slice(at + 1)),
        fc.constantFrom(...mine).map((i) => `${i.id.toUpperCase()}/`),
      ),
    },
  );
  type Mode = 'redirect' | 'stream';
  const tokenArb = (id: string, mode: Mode) => {
    const own = mine.find((i) => i.id === id);
    const good = own ? tokenOf(mode === 'stream' ? own.stream : own.redirect) : undefined;
    const [kid, exp, mac] = (good ?? tokenOf(mine[0]!.redirect)).split('.') as [string, string, string];
    return fc.oneof(
      fc.constant(good ?? ''),
      fc.constant(expired.sign(id, mode)),
      fc.constant(neverExpiring.sign(id, mode)),
      fc.constant(wrongKey.sign(id, mode)),
      fc.constant(unknownKid.sign(id, mode)),
      fc.constantFrom(...mine).map((i) => tokenOf(i.redirect)),
      fc.constant(tokenOf(t.theirs.stream)),
      fc.constant(good ? tokenOf(mode === 'stream' ? own!.redirect : own!.stream) : ''),
      fc.stringMatching(/^[A-Za-z0-9_-]{22}$/).map((m) => `${kid}.${exp}.${m}`),
      fc.nat().map((n) => `${kid}.${n.toString(36)}.${mac}`),
      fc.string({ maxLength: 80 }),
      fc.nat(12_000).map((n) => `${kid}.${exp}.${'A'.repeat(n)}`),
      fc.nat(12_000).map((n) => `${'9'.repeat(n)}.${exp}.${mac}`),
      fc.tuple(fc.nat(40), fc.constantFrom('A', '-', '_', '.', '%')).map(([i, c]) => {
        const base = good ?? `${kid}.${exp}.${mac}`;
        return base.slice(0, i) + c + base.slice(i + 1);
      }),
    );
  };
  return fc
    .tuple(idArb, fc.constantFrom<Mode | 'junk'>('redirect', 'stream', 'stream', 'junk'), fc.boolean())
    .chain(([id, mode, withBearer]) =>
      fc
        .tuple(
          fc.option(tokenArb(id, mode === 'junk' ? 'stream' : mode), { nil: undefined, freq: 6 }),
          fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'OPTIONS'),
          fc.constantFrom('', '&t=x', '&mode=redirect', '&t=', '&mode=stream&mode=redirect'),
          fc.constantFrom(t.alice, t.bob, 'garbage', ''),
          fc.constantFrom('zip', 'STREAM', '', 'stream%00'),
        )
        .map(([token, method, extra, who, junkMode]) => {
          const modeParam = mode === 'junk' ? `mode=${junkMode}` : mode === 'stream' ? 'mode=stream' : '';
          const query = [token !== undefined ? `t=${token}` : '', modeParam].filter(Boolean).join('&');
          const path = rawPath(`/proxy/${id}?${query}${extra}`);
          const headers: Record<string, string> = withBearer ? { authorization: `Bearer ${who}` } : {};
          return {
            label: `${method} /proxy/<${id.length} chars> mode=${mode} token=${token === undefined ? 'none' : `<${token.length} chars>`}${withBearer ? ' + bearer' : ''}${extra}`,
            req: { method, path, headers },
          };
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// /local-bucket paths

function bucketCases(t: Targets): fc.Arbitrary<Case> {
  return fc.constantFrom(...t.images).chain((img) => {
    const u = new URL(img.bucket, 'http://x');
    const key = u.pathname.slice('/local-bucket/'.length);
    const [s, e, sig] = ['s', 'e', 'sig'].map((p) => u.searchParams.get(p)!) as [string, string, string];
    const other = t.theirs;
    const keyArb = fc.oneof(
      fc.constant(key),
      fc.constant(new URL(other.bucket, 'http://x').pathname.slice('/local-bucket/'.length)),
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.constantFrom(
        `${key}/..`,
        `../${key}`,
        key.replace(/\//g, '%2F'),
        key.replace(/\//g, '%252F'),
        `${key}.signet-meta.json`,
        `${key}%00`,
        `${key}%00.png`,
        '..%2F..%2F..%2Fetc%2Fpasswd',
        '%2e%2e/%2e%2e/etc/passwd',
        '%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd',
        '..%5C..%5Cetc%5Cpasswd',
        '',
        '/',
        '%',
        `u/alice/../../../${key}`,
        `u/alice/..%2F..%2F${key}`,
      ),
      fc.nat(12_000).map((n) => `u/${'a'.repeat(n)}`),
      fc.nat(3000).map((n) => `${'a/'.repeat(n)}x`),
    );
    const num = (v: string) =>
      fc.oneof(
        fc.constant(v),
        fc.integer().map(String),
        fc.string({ maxLength: 12 }),
        fc.constantFrom('', '1e3', '-0', '0x10', `${v}.0`, ' ', `0${v}`, '9'.repeat(400)),
      );
    const sigArb = fc.oneof(
      fc.constant(sig),
      fc.string({ maxLength: 60 }),
      fc.nat(sig.length - 1).map((n) => sig.slice(0, n)),
      fc
        .tuple(fc.nat(sig.length - 1), fc.constantFrom('A', '_', '-'))
        .map(([i, c]) => sig.slice(0, i) + c + sig.slice(i + 1)),
      fc.constant(`${sig}${sig}`),
      fc.nat(12_000).map((n) => 'A'.repeat(n)),
    );
    // An old link (a window that has ended) and one not yet valid: signed with the real key.
    const windows = fc.oneof(
      fc.tuple(num(s), num(e), sigArb).map(([ss, ee, sg]) => ({ ss, ee, sg, what: 'tampered' })),
      fc.nat(86_400).map((ago) => {
        const w = { start: nowS() - 7200 - ago, end: nowS() - 3600 - ago };
        return {
          ss: String(w.start),
          ee: String(w.end),
          sg: localSignature(LOCAL_SECRET, decodeURIComponent(key), w),
          what: 'expired',
        };
      }),
      fc.nat(86_400).map((ahead) => {
        const w = { start: nowS() + 3600 + ahead, end: nowS() + 7200 + ahead };
        return {
          ss: String(w.start),
          ee: String(w.end),
          sg: localSignature(LOCAL_SECRET, decodeURIComponent(key), w),
          what: 'not yet valid',
        };
      }),
    );
    return fc
      .tuple(keyArb, windows, fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE'), fc.boolean())
      .map(([k, { ss, ee, sg, what }, method, dup]) => {
        const qs = `${new URLSearchParams({ s: ss, e: ee, sig: sg }).toString()}${dup ? `&sig=${sig}&s=${s}` : ''}`;
        return {
          label: `${method} /local-bucket/<${k.length} chars${k === key ? ', the real key' : ''}> ${what} window${dup ? ' + duplicated params' : ''}`,
          req: { method, path: rawPath(`/local-bucket/${k}?${qs}`), headers: {} },
        };
      });
  });
}

// ---------------------------------------------------------------------------------------------
// JWTs

function jwtCases(t: Targets): fc.Arbitrary<Case> {
  const claims = fc.record(
    {
      sub: fc.oneof(
        fc.constantFrom('alice', 'bob', ''),
        fc.string({ maxLength: 40 }),
        fc.integer(),
        fc.constant(null),
        fc.array(fc.string(), { maxLength: 3 }),
      ),
      exp: fc.oneof(
        fc.constant(nowS() + 600),
        fc.constant(nowS() - 60),
        fc.integer(),
        fc.double(),
        fc.string({ maxLength: 10 }),
        fc.constant(1e308),
      ),
      nbf: fc.oneof(fc.constant(nowS() + 3600), fc.integer()),
      iat: fc.oneof(fc.constant(nowS() + 86_400), fc.integer()),
      role: fc.constantFrom('admin', 'user', 'ADMIN', ['admin']),
      aud: fc.oneof(fc.string({ maxLength: 20 }), fc.array(fc.string(), { maxLength: 3 })),
      iss: fc.string({ maxLength: 20 }),
    },
    { requiredKeys: [] },
  );
  const header = fc.record(
    {
      alg: fc.constantFrom(
        'HS256',
        'HS384',
        'HS512',
        'none',
        'None',
        'NONE',
        'RS256',
        'ES256',
        'PS256',
        'EdDSA',
        '',
        'hs256',
      ),
      typ: fc.constantFrom('JWT', 'jwt', 'x'),
      kid: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('../../../../dev/null', "' or 1=1 --")),
      jwk: fc.constant({ kty: 'oct', k: b64u(OTHER_SECRET) }),
      jku: fc.constant('http://127.0.0.1:1/jwks.json'),
      crit: fc.constantFrom(['exp'], ['b64'], []),
      b64: fc.constant(false),
    },
    { requiredKeys: ['alg'] },
  );
  const signer = fc.constantFrom<[string | null, string]>(
    [TEST_JWT_SECRET, 'sha256'],
    [TEST_JWT_SECRET, 'sha384'],
    [TEST_JWT_SECRET, 'sha512'],
    [OTHER_SECRET, 'sha256'],
    [null, 'sha256'],
  );
  const crafted = fc.tuple(header, claims, signer).map(([h, c, [secret, hash]]) => ({
    what: `alg ${JSON.stringify(h.alg)} ${secret === TEST_JWT_SECRET ? `right key/${hash}` : secret ? 'wrong key' : 'unsigned'}${h.jwk ? ' +jwk' : ''}${h.crit ? ' +crit' : ''}`,
    token: jwt(h, c, secret, hash),
  }));
  const good = t.alice;
  const [gh, gp, gs] = good.split('.') as [string, string, string];
  const garbage = fc.oneof(
    fc.string({ maxLength: 200 }).map((s) => ({ what: 'random string', token: printable(s) })),
    fc.nat(good.length).map((n) => ({ what: 'truncated', token: good.slice(0, n) })),
    fc
      .tuple(fc.nat(good.length - 1), fc.constantFrom('A', '-', '_', '.', '='))
      .map(([i, c]) => ({ what: 'one character changed', token: good.slice(0, i) + c + good.slice(i + 1) })),
    fc
      .array(fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/), { minLength: 1, maxLength: 6 })
      .map((p) => ({ what: `${p.length} segments`, token: p.join('.') })),
    fc.constantFrom(
      { what: 'header not JSON', token: `${b64u('nope')}.${gp}.${gs}` },
      { what: 'header an array', token: `${b64u([1, 2])}.${gp}.${gs}` },
      { what: 'payload not JSON', token: `${gh}.${b64u('{"sub":')}.${gs}` },
      {
        what: 'payload of another token',
        token: `${gh}.${b64u({ sub: 'bob', exp: nowS() + 600, role: 'admin' })}.${gs}`,
      },
    ),
    fc.integer({ min: 1000, max: 15_000 }).map((n) => ({
      what: `huge (${n})`,
      token: jwt({ alg: 'HS256' }, { sub: 'alice', exp: nowS() + 600, pad: 'x'.repeat(n) }, OTHER_SECRET),
    })),
    fc
      .integer({ min: 1000, max: 11_000 })
      .map((n) => ({ what: `huge, signed (${n})`, token: bearer('alice', { pad: 'y'.repeat(n) }) })),
    fc.integer({ min: 100, max: 5000 }).map((n) => ({
      what: `payload nested ${n} deep`,
      token: jwt({ alg: 'HS256' }, `{"sub":"alice","a":${'['.repeat(n)}${']'.repeat(n)}}`, OTHER_SECRET),
    })),
    fc.integer({ min: 10, max: 2000 }).map((n) => ({
      what: `payload of ${n} claims`,
      token: jwt(
        { alg: 'HS256' },
        Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, i])),
        TEST_JWT_SECRET,
      ),
    })),
  );
  const scheme = fc.constantFrom(
    'Bearer ',
    'Bearer ',
    'Bearer ',
    'bearer ',
    'Bearer  ',
    'Basic ',
    '',
    'Bearer\t',
  );
  const where = fc.constantFrom('graphql', 'graphql', 'graphql', 'proxy', 'upload');
  return fc
    .tuple(fc.oneof(crafted, garbage), scheme, where, fc.constantFrom(...t.images))
    .map(([{ what, token }, sch, at, img]) => {
      const authorization = printable(`${sch}${token}`);
      const label = `JWT ${what} (${token.length} chars) on ${at}`;
      if (at === 'proxy') {
        const mode = new URL(img.stream, 'http://x').searchParams.get('mode');
        return {
          label,
          req: {
            method: 'GET',
            path: `/proxy/${img.id}${mode ? '?mode=stream' : ''}`,
            headers: { authorization },
          },
        };
      }
      if (at === 'upload') {
        const req = uploadReq(BASES[0]!.bytes, null);
        return {
          label,
          req: {
            ...req,
            headers: { ...req.headers, authorization },
            cut: 'an upload with a bad bearer token is refused before its body is read',
          },
        };
      }
      return {
        label,
        req: graphqlReq(
          '{"query":"{ viewer { id isAdmin } images(first: 3) { totalCount } }"}',
          { authorization },
          null,
        ),
      };
    });
}

// ---------------------------------------------------------------------------------------------
// Judging answers

/** Node's limit on a request's head (request line and headers): `--max-http-header-size`, 16 KB. */
const MAX_HEAD_BYTES = 16 * 1024;

/**
 * A connection the server closed on purpose, so a client still writing sees EPIPE or a reset
 * rather than the answer: a request head over Node's limit (answered 431 and closed at once), or
 * a request refused before its body is read (`Req.cut`).
 */
function closedDeliberately(req: Req, error: string | undefined): boolean {
  if (!/^(ECONNRESET|EPIPE)/.test(error ?? '')) return false;
  const head =
    req.method.length +
    req.path.length +
    12 +
    Object.entries(req.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
  return head > MAX_HEAD_BYTES || req.cut !== undefined;
}

/** Why an answer is not one a client may get, or null when it is. */
function judge(c: Case, r: RawResponse): string | null {
  if (r.status >= 500) return `status ${r.status}`;
  const head = c.req.method === 'HEAD';
  // Node's own refusal of oversized headers: it answers and closes, before any route runs.
  if (r.status === 431) return r.body.length === 0 ? null : '431 with a body';
  const type = String(r.headers['content-type'] ?? '');
  let json: unknown;
  if (type.includes('json') && !head) {
    try {
      json = JSON.parse(r.body.toString('utf8'));
    } catch {
      return `content-type ${type} but the body is not JSON: ${r.body.toString('utf8', 0, 120)}`;
    }
  }
  const length = r.headers['content-length'];
  if (!head && length !== undefined && Number(length) !== r.body.length)
    return `content-length ${length} but ${r.body.length} bytes`;
  // Where the request lands once dot segments are resolved, as the gateway routes it.
  const route = new URL(c.req.path, 'http://gateway.invalid').pathname;
  // `..` led out of the API to the web app's pages (here: "not built", as text).
  if (!route.startsWith('/graphql') && !route.startsWith('/proxy/') && !route.startsWith('/local-bucket/'))
    return null;
  if (route.startsWith('/graphql')) {
    if (head) return null;
    if (json === undefined)
      return `GraphQL answer is not JSON (${r.status} ${type}): ${r.body.toString('utf8', 0, 120)}`;
    const errors = (json as { errors?: { extensions?: { code?: string } }[] }).errors;
    if (r.status >= 400 && !(Array.isArray(errors) && errors.length > 0)) return `${r.status} without errors`;
    for (const e of errors ?? [])
      if (!CLIENT_CODES.has(e?.extensions?.code ?? 'none'))
        return `error code ${e?.extensions?.code}: ${JSON.stringify(e).slice(0, 200)}`;
    return null;
  }
  if (r.status >= 400) {
    if (head) return null;
    const e = (json as { error?: { code?: unknown; requestId?: unknown } } | undefined)?.error;
    if (typeof e?.code !== 'string' || typeof e.requestId !== 'string')
      return `${r.status} without an {error: {code, requestId}} body: ${r.body.toString('utf8', 0, 120)}`;
    return null;
  }
  if (r.status === 302) return r.headers.location ? null : '302 without a location';
  if (r.status === 304) return r.body.length === 0 ? null : '304 with a body';
  if (r.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(r.headers['content-range'] ?? ''));
    if (!m) return `206 with content-range ${r.headers['content-range']}`;
    if (!head && r.body.length !== Number(m[2]) - Number(m[1]) + 1)
      return '206 body does not match its range';
    return null;
  }
  if (r.status === 200 || r.status === 204) return null;
  return `unexpected status ${r.status}`;
}

// ---------------------------------------------------------------------------------------------
// The probe: its own thread, so the senders' work in this process does not delay it.

const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let stopping = false;
parentPort.on('message', (m) => { if (m === 'stop') stopping = true; });
const samples = [];
const failures = [];
function once() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const at = performance.timeOrigin + t0;
    const req = http.get({ host: '127.0.0.1', port: workerData.port, path: '/healthz', agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ at, ms: performance.now() - t0, status: res.statusCode }));
      res.on('error', (e) => resolve({ at, ms: performance.now() - t0, status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', (e) => resolve({ at, ms: performance.now() - t0, status: 0, error: e.message }));
  });
}
(async () => {
  let next = performance.now();
  while (!stopping) {
    const r = await once();
    samples.push([r.at, r.ms]);
    if (r.status !== 200) failures.push(r);
    next += workerData.intervalMs;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    else next = performance.now();
  }
  agent.destroy();
  parentPort.postMessage({ samples, failures });
})();
`;

interface ProbeResult {
  /** [start (epoch ms), latency (ms)] of each /healthz. */
  samples: [number, number][];
  failures: { at: number; ms: number; status: number; error?: string }[];
}

function startProbe(port: number): { stop: () => Promise<ProbeResult> } {
  const worker = new Worker(PROBE_SOURCE, {
    eval: true,
    workerData: { port, intervalMs: PROBE_INTERVAL_MS },
  });
  const done = new Promise<ProbeResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const r = await done;
      await worker.terminate();
      return r;
    },
  };
}

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
const ms1 = (n: number) => Math.round(n * 10) / 10;

/** A gauge of the gateway's /metrics (prom-client's default metrics carry no labels here). */
function gauge(text: string, name: string): number {
  for (const line of text.split('\n'))
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  throw new Error(`no ${name} in /metrics`);
}

// ---------------------------------------------------------------------------------------------

interface Problem {
  category: Category;
  id: string;
  label: string;
  status: number;
  detail: string;
}

describe('responsiveness guard: 30 s of hostile input while /healthz is probed', () => {
  let gateway: GatewayProcess;
  let drop: (() => Promise<void>) | undefined;
  let targets: Targets;
  /** This run's REDIS_PREFIX without its colon (BullMQ's keys use it in a hash tag). */
  const redisBase = `signet-guard-${randomBytes(4).toString('hex')}`;

  /** The request id each case is sent with: the gateway's log lines for it can then be found. */
  const requestId = (id: string) => `guard-${id.replace(/\//g, '.')}`;
  const send = async (req: Req, id?: string): Promise<{ res?: RawResponse; error?: string; ms: number }> => {
    const t0 = performance.now();
    const headers = { ...req.headers };
    if (id) headers['x-request-id'] = requestId(id);
    if (req.body && headers['content-length'] === undefined)
      headers['content-length'] = String(req.body.length);
    try {
      const res = await rawRequest(gateway.url, {
        method: req.method,
        path: req.path,
        headers,
        ...(req.body ? { body: req.body } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      return { res, ms: performance.now() - t0 };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { error: `${e.code ?? e.name}: ${e.message}`, ms: performance.now() - t0 };
    }
  };
  const serverLines = (id: string) =>
    gateway.logs.filter((l) => l.includes(requestId(id))).map((l) => `    gateway: ${l.slice(0, 400)}`);

  const metrics = async () => {
    const r = await rawRequest(gateway.url, {
      path: '/metrics',
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(r.status).toBe(200);
    return r.body.toString('utf8');
  };

  /** One upload through GraphQL, as the web app sends it; returns the row and its links. */
  async function seedImage(token: string, format: string, bytes: Buffer): Promise<Seeded> {
    const r = await send(uploadReq(bytes, token));
    const body = r.res
      ? (JSON.parse(r.res.body.toString('utf8')) as {
          data?: { uploadImage?: { id: string; key: string; proxyUrl: string; signedUrl: { url: string } } };
        })
      : undefined;
    const img = body?.data?.uploadImage;
    if (!img)
      throw new Error(`seeding a ${format} failed: ${r.error ?? r.res?.body.toString('utf8').slice(0, 300)}`);
    const q = await send(
      graphqlReq(
        JSON.stringify({
          query: 'query($id: ID!) { image(id: $id) { proxyUrl(mode: STREAM) } }',
          variables: { id: img.id },
        }),
        {},
        token,
      ),
    );
    const stream = (JSON.parse(q.res!.body.toString('utf8')) as { data: { image: { proxyUrl: string } } })
      .data.image.proxyUrl;
    return {
      id: img.id,
      format,
      bytes,
      key: img.key,
      stream: pathOf(stream),
      redirect: pathOf(img.proxyUrl),
      bucket: pathOf(img.signedUrl.url),
    };
  }

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    gateway = await GatewayProcess.start({
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      STORAGE_DRIVER: 'local',
      DATABASE_URL: db.url,
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: `${redisBase}:`,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      PROXY_TOKEN_SECRET: `k0:${PROXY_SECRET}`,
      LOCAL_SIGNING_SECRET: LOCAL_SECRET,
      METRICS_TOKEN,
      UPLOAD_ALLOW_SVG: 'true',
      URL_TTL_SECONDS: '3600',
      // A warning on stderr fails the run (below): with its stack, it says where it came from.
      NODE_OPTIONS: '--trace-warnings',
    });
    const alice = bearer('alice');
    const bob = bearer('bob');
    // A larger PNG too, so ranges have room to land inside, across and past it.
    const big = Buffer.concat([makePng(8, 8, [1, 2, 3], [4, 5, 6]), Buffer.alloc(70_000, 7)]);
    const images: Seeded[] = [];
    for (const { format, bytes } of [...BASES, { format: 'png', bytes: big }])
      images.push(await seedImage(alice, format, bytes));
    const theirs = await seedImage(bob, 'png', BASES[0]!.bytes);
    targets = { alice, bob, images, theirs };
  });

  afterAll(async () => {
    await gateway?.stop();
    await drop?.();
    // A run leaves some ten thousand keys (URLs, counters, jobs) in the shared Redis: its own only.
    const redis = new Redis(testRedisUrl());
    for (const pattern of [`${redisBase}:*`, `{${redisBase}-bull}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
    await redis.quit();
  });

  it('no input stalls the gateway: /healthz and event-loop delay p99 < 50 ms, max < 250 ms; no 5xx; every answer well-formed', async () => {
    const arbitraries: Record<Category, fc.Arbitrary<Case>> = {
      graphql: graphqlCases(targets),
      upload: uploadCases(targets),
      range: rangeCases(targets),
      proxy: proxyCases(targets),
      bucket: bucketCases(targets),
      jwt: jwtCases(targets),
    };
    // One case at a time, as it is sent: the cost of making them is spread over the run.
    const caseAt = (category: Category, n: number): Case =>
      fc.sample(arbitraries[category], { seed: seedOf(category), path: String(n), numRuns: 1 })[0]!;
    console.log(
      `[responsiveness] seed=${SEED} (RESPONSIVENESS_SEED to change; RESPONSIVENESS_CASE=<category>/<n> sends one case alone)`,
    );

    if (REPLAY) {
      // One case alone: what it was, what the gateway answered and logged, and the same verdict.
      const [category, n] = REPLAY.split('/') as [Category, string];
      const c = caseAt(category, Number(n));
      await metrics();
      const r = await send(c.req, REPLAY);
      const eld = gauge(await metrics(), 'nodejs_eventloop_lag_max_seconds') * 1000;
      console.log(
        `[responsiveness] replay ${REPLAY}: ${c.label}\n  -> ${r.res ? `${r.res.status} ${r.res.body.toString('utf8', 0, 400)}` : r.error} in ${ms1(r.ms)} ms; gateway event-loop delay max ${ms1(eld)} ms\n${serverLines(REPLAY).join('\n')}`,
      );
      if (r.res) expect(judge(c, r.res)).toBeNull();
      else expect(closedDeliberately(c.req, r.error), r.error).toBe(true);
      return;
    }

    const stats = new Map<Category, { sent: number; statuses: Map<number | 'closed', number>; ms: number[] }>(
      CATEGORIES.map((c) => [c, { sent: 0, statuses: new Map(), ms: [] }]),
    );
    const fiveXX: Problem[] = [];
    const malformed: Problem[] = [];
    const transport: Problem[] = [];
    const slowest: { ms: number; id: string; label: string; status: number }[] = [];
    /** When each case was in flight (epoch ms), to name what was running when /healthz was slow. */
    const spans: { id: string; label: string; from: number; to: number }[] = [];
    const epochNow = () => performance.timeOrigin + performance.now();
    const position = new Map<Category, number>(CATEGORIES.map((c) => [c, 0]));
    let turn = 0;

    const ownLoop = monitorEventLoopDelay({ resolution: 10 });
    const logMark = gateway.logs.length;
    await metrics(); // prom-client resets its event-loop histogram on every scrape: start clean
    ownLoop.enable();
    const probe = startProbe(gateway.port);
    const started = performance.now();
    const deadline = started + DURATION_MS;

    const sender = async () => {
      while (performance.now() < deadline) {
        const category = CATEGORIES[turn++ % CATEGORIES.length]!;
        const n = position.get(category)!;
        position.set(category, n + 1);
        const id = `${category}/${n}`;
        const c = caseAt(category, n);
        const from = epochNow();
        const r = await send(c.req, id);
        spans.push({ id, label: c.label, from, to: epochNow() });
        const s = stats.get(category)!;
        s.sent++;
        s.ms.push(r.ms);
        const closed = !r.res && closedDeliberately(c.req, r.error);
        const status = r.res?.status ?? (closed ? 'closed' : 0);
        s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
        slowest.push({ ms: r.ms, id, label: c.label, status: r.res?.status ?? 0 });
        slowest.sort((a, b) => b.ms - a.ms);
        slowest.length = Math.min(slowest.length, 8);
        if (closed) continue;
        if (!r.res) {
          transport.push({ category, id, label: c.label, status: 0, detail: r.error ?? '?' });
          continue;
        }
        const why = judge(c, r.res);
        if (why === null) continue;
        const p = {
          category,
          id,
          label: c.label,
          status: r.res.status,
          detail: `${why} | ${r.res.body.toString('utf8', 0, 300)}`,
        };
        (r.res.status >= 500 ? fiveXX : malformed).push(p);
      }
    };
    await Promise.all(Array.from({ length: SENDERS }, sender));
    const elapsed = performance.now() - started;
    const probed = await probe.stop();
    const scrape = await metrics();
    ownLoop.disable();

    const eldP99 = gauge(scrape, 'nodejs_eventloop_lag_p99_seconds') * 1000;
    const eldMax = gauge(scrape, 'nodejs_eventloop_lag_max_seconds') * 1000;
    const health = probed.samples.map(([, ms]) => ms).sort((a, b) => a - b);
    const slowProbes = [...probed.samples].sort((a, b) => b[1] - a[1]).slice(0, 5);
    const [hp50, hp99, hmax] = [
      quantile(health, 0.5),
      quantile(health, 0.99),
      health[health.length - 1] ?? Number.NaN,
    ];

    const lines = CATEGORIES.map((c) => {
      const s = stats.get(c)!;
      const sorted = [...s.ms].sort((a, b) => a - b);
      const st = [...s.statuses]
        .sort((a, b) => String(a[0]).localeCompare(String(b[0])))
        .map(([k, v]) => `${k}:${v}`)
        .join(' ');
      return `  ${c.padEnd(8)} n=${s.sent} p50=${ms1(quantile(sorted, 0.5))}ms p99=${ms1(quantile(sorted, 0.99))}ms max=${ms1(sorted[sorted.length - 1] ?? 0)}ms statuses ${st}`;
    });
    const total = [...stats.values()].reduce((a, s) => a + s.sent, 0);
    const perCategory = CATEGORIES.map((c) => `${c}=${stats.get(c)!.sent}`).join(' ');
    console.log(
      [
        `[responsiveness] seed=${SEED} ${ms1(elapsed / 1000)} s, ${SENDERS} senders: ${total} requests (${perCategory}); ` +
          `healthz n=${health.length} p50=${ms1(hp50)}ms p99=${ms1(hp99)}ms max=${ms1(hmax)}ms; ` +
          `gateway ELD p99=${ms1(eldP99)}ms max=${ms1(eldMax)}ms; 5xx=${fiveXX.length} malformed=${malformed.length} transport=${transport.length}; ` +
          `test-process ELD p99=${ms1(ownLoop.percentile(99) / 1e6)}ms max=${ms1(ownLoop.max / 1e6)}ms`,
        ...lines,
        '  slowest requests:',
        ...slowest.map((s) => `    ${ms1(s.ms)}ms ${s.status} ${s.id} ${s.label.slice(0, 160)}`),
        '  slowest /healthz, with what was in flight:',
        ...slowProbes.flatMap(([at, ms]) => [
          `    ${ms1(ms)}ms at +${ms1((at - (performance.timeOrigin + started)) / 1000)}s:`,
          ...spans
            .filter((sp) => sp.from <= at + ms && sp.to >= at)
            .map((sp) => `      ${sp.id} ${sp.label.slice(0, 140)}`),
        ]),
      ].join('\n'),
    );
    const show = (what: string, list: Problem[]) => {
      if (list.length === 0) return;
      const byCat = CATEGORIES.map((c) => `${c}=${list.filter((p) => p.category === c).length}`).join(' ');
      console.log(
        `[responsiveness] ${what}: ${list.length} (${byCat})\n${list
          .slice(0, 40)
          .map(
            (p) =>
              `  ${p.id} ${p.status} ${p.label.slice(0, 160)}\n    ${p.detail.slice(0, 400)}\n${serverLines(p.id).join('\n')}`,
          )
          .join('\n')}`,
      );
    };
    show('5xx', fiveXX);
    show('malformed answers', malformed);
    show('no answer (reset, hang)', transport);
    if (probed.failures.length)
      console.log(`[responsiveness] /healthz failures: ${JSON.stringify(probed.failures.slice(0, 10))}`);
    const errorLogs = gateway.logs.slice(logMark).filter((l) => {
      try {
        return (JSON.parse(l) as { level: number }).level >= 50;
      } catch {
        return true;
      }
    });
    if (errorLogs.length)
      console.log(`[responsiveness] gateway error lines:\n${errorLogs.slice(0, 20).join('\n')}`);

    expect(gateway.child.exitCode, 'the gateway is still running').toBeNull();
    expect(fiveXX.map((p) => `${p.id} ${p.status} ${p.label}`)).toEqual([]);
    expect(transport.map((p) => `${p.id} ${p.detail} ${p.label}`)).toEqual([]);
    expect(malformed.map((p) => `${p.id} ${p.detail.slice(0, 200)} ${p.label}`)).toEqual([]);
    expect(probed.failures).toEqual([]);
    expect(errorLogs).toEqual([]);
    for (const c of CATEGORIES) expect(stats.get(c)!.sent, c).toBeGreaterThan(0);
    expect(hp99, '/healthz p99 (ms)').toBeLessThan(50);
    expect(hmax, '/healthz max (ms)').toBeLessThan(250);
    expect(eldP99, 'gateway event-loop delay p99 (ms)').toBeLessThan(50);
    expect(eldMax, 'gateway event-loop delay max (ms)').toBeLessThan(250);
    // And it still serves: a normal page with URLs.
    const page = await send(
      graphqlReq(
        JSON.stringify({ query: '{ images(first: 5) { edges { node { id signedUrl { url } } } } }' }),
        {},
        targets.alice,
      ),
    );
    expect(page.res?.status).toBe(200);
    expect((JSON.parse(page.res!.body.toString('utf8')) as { errors?: unknown }).errors).toBeUndefined();
  });
});
