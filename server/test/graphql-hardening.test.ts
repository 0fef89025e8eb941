import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kind, parse, print, visit } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_COST } from '../src/http/plugins/use-cost-limit.js';
import { QUERY_LIMITS } from '../src/http/plugins/use-query-limits.js';
import { buildManifest, readWebDocuments } from '../src/schema/operation-manifest.js';
import { makePng } from './fixtures/images.js';
import { type Harness, startHarness } from './support/harness.js';
import { answer, gqlRaw, postGraphql, type RawGql } from './support/raw-graphql.js';
import { seed } from './support/seed.js';

const WEB_SRC = fileURLToPath(new URL('../../web/src', import.meta.url));
const manifest = buildManifest(readWebDocuments(WEB_SRC));
const byName = new Map(
  Object.entries(manifest).map(([hash, doc]) => [
    /^(?:query|mutation|subscription) (\w+)/.exec(doc)![1]!,
    { hash, doc },
  ]),
);

/** What Apollo Client sends: the document with `__typename` in every selection set but the root. */
function apolloSpelling(doc: string): string {
  return print(
    visit(parse(doc), {
      SelectionSet: {
        leave(node, _key, parent) {
          if (parent && 'kind' in parent && parent.kind === Kind.OPERATION_DEFINITION) return undefined;
          if (node.selections.some((s) => s.kind === Kind.FIELD && s.name.value === '__typename'))
            return undefined;
          return {
            ...node,
            selections: [
              ...node.selections,
              { kind: Kind.FIELD, name: { kind: Kind.NAME, value: '__typename' } },
            ],
          };
        },
      },
    }),
  );
}

/** A multipart upload of `operations` as given (the web app's own document, or another). */
async function uploadWith(h: Harness, query: string, bytes: Buffer): Promise<RawGql> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables: { file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'a.png');
  return postGraphql(h, form, {
    'apollo-require-preflight': 'true',
    authorization: `Bearer ${await h.token('alice')}`,
  });
}

const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);
const IMAGE_FIELDS =
  'id key contentType byteSize width height createdAt signedUrl { url expiresAt } proxyUrl';

/** Runs every operation of the web app, each sent through `send`. */
async function runWebOperations(
  h: Harness,
  ids: string[],
  send: (name: string, variables: Record<string, unknown>, token: string) => Promise<RawGql>,
): Promise<Record<string, RawGql>> {
  const alice = await h.token('alice');
  const admin = await h.token('alice', { role: 'admin' });
  const out: Record<string, RawGql> = {};
  out.GalleryPage = await send('GalleryPage', { first: 100 }, alice);
  out.ImageUrls = await send('ImageUrls', { ids }, alice);
  out.RefreshSignedUrls = await send('RefreshSignedUrls', { ids: ids.slice(0, 1) }, alice);
  out.DeleteImage = await send('DeleteImage', { id: randomUUID() }, alice);
  out.Viewer = await send('Viewer', {}, alice);
  out.UrlStats = await send('UrlStats', { days: 7 }, admin);
  return out;
}

function expectAllFine(results: Record<string, RawGql>) {
  for (const [name, r] of Object.entries(results)) {
    expect(r.body?.errors, `${name}: ${r.text.slice(0, 300)}`).toBeUndefined();
    expect(r.status, name).toBe(200);
  }
  const page = results.GalleryPage!.body!.data!.images as { edges: unknown[] };
  expect(page.edges).toHaveLength(100);
}

/** A subscription over SSE: the first `data:` block after forcing a refresh of `id`. */
async function firstEvent(h: Harness, body: Record<string, unknown>, id: string): Promise<string> {
  const ac = new AbortController();
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      authorization: `Bearer ${await h.token('alice')}`,
    },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  // The web app's own re-sign (a persisted-only server runs nothing else).
  await gqlRaw(h, { query: byName.get('RefreshSignedUrls')!.doc, variables: { ids: [id] } });
  let text = '';
  const deadline = Date.now() + 5000;
  while (!/data: /.test(text) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  ac.abort();
  return text;
}

describe('GraphQL hardening: the defaults (development)', () => {
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    ids = await seed(h, 'alice', 100);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the web app has its 8 operations, and each one passes every limit and runs', async () => {
    expect([...byName.keys()].sort()).toEqual([
      'DeleteImage',
      'GalleryPage',
      'ImageUrls',
      'RefreshSignedUrls',
      'SignedUrlRefreshed',
      'UploadImage',
      'UrlStats',
      'Viewer',
    ]);
    const results = await runWebOperations(h, ids, (name, variables, token) =>
      gqlRaw(h, { query: apolloSpelling(byName.get(name)!.doc), variables }, { token }),
    );
    expectAllFine(results);
    const up = await uploadWith(h, apolloSpelling(byName.get('UploadImage')!.doc), PNG);
    expect(up.body?.errors, up.text).toBeUndefined();
    const event = await firstEvent(
      h,
      { query: apolloSpelling(byName.get('SignedUrlRefreshed')!.doc), variables: { ids: [ids[0]] } },
      ids[0]!,
    );
    expect(event).toContain('signedUrlRefreshed');
    expect(event).not.toContain('errors');
  });

  it('too deep: nested fragments past the depth limit are BAD_USER_INPUT', async () => {
    const nest = (n: number) => `{ viewer { ${'... on Viewer { '.repeat(n)} id ${'} '.repeat(n)} } }`;
    expect((await gqlRaw(h, { query: nest(QUERY_LIMITS.depth - 2) })).body?.errors).toBeUndefined();
    const deep = await gqlRaw(h, { query: nest(QUERY_LIMITS.depth + 5) });
    expect(deep.codes).toEqual(['BAD_USER_INPUT']);
    expect(deep.body!.errors![0]!.message).toMatch(/depth limit of 10/i);
    expect(deep.body!.data ?? null).toBeNull();
  });

  it('too many aliases, directives or tokens are BAD_USER_INPUT', async () => {
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`;
    expect((await gqlRaw(h, { query: aliases(QUERY_LIMITS.aliases) })).body?.errors).toBeUndefined();
    expect((await gqlRaw(h, { query: aliases(QUERY_LIMITS.aliases + 1) })).codes).toEqual(['BAD_USER_INPUT']);

    const directives = (n: number) => `{ viewer { ${'id @include(if: true) '.repeat(n)} } }`;
    expect((await gqlRaw(h, { query: directives(QUERY_LIMITS.directives) })).body?.errors).toBeUndefined();
    expect((await gqlRaw(h, { query: directives(QUERY_LIMITS.directives + 1) })).codes).toEqual([
      'BAD_USER_INPUT',
    ]);

    const tokens = await gqlRaw(h, { query: `{ viewer { ${'id '.repeat(QUERY_LIMITS.tokens)} } }` });
    expect(tokens.codes).toEqual(['BAD_USER_INPUT']);
    expect(tokens.body!.errors![0]!.message).toMatch(/token limit/i);
  });

  it('cost counts page sizes, also from variables: two gallery pages pass, ten do not', async () => {
    const pages = (n: number, first: string) =>
      `query${first === '$n' ? '($n: Int)' : ''} { ${Array.from({ length: n }, (_, i) => `p${i}: images(first: ${first}) { edges { node { ${IMAGE_FIELDS} } } }`).join(' ')} }`;
    const two = await gqlRaw(h, { query: pages(2, '$n'), variables: { n: 100 } });
    expect(two.body?.errors, two.text.slice(0, 300)).toBeUndefined();
    for (const [query, n] of [
      [pages(10, '$n'), 100],
      [pages(10, '100'), null],
    ] as const) {
      const r = await gqlRaw(h, { query, variables: { n } });
      expect(r.codes).toEqual(['BAD_USER_INPUT']);
      expect(r.body!.errors![0]!.message).toContain(String(MAX_COST));
      expect(r.body!.errors![0]!.extensions!.cost).toBeGreaterThan(MAX_COST);
    }
    // The same ten aliases with small pages are cheap enough.
    const small = await gqlRaw(h, { query: pages(10, '$n'), variables: { n: 5 } });
    expect(small.body?.errors).toBeUndefined();
    // 500 ids with every field of an Image is over the bound; the web app's ImageUrls is not.
    const many = Array.from({ length: 500 }, () => randomUUID());
    const wide = await gqlRaw(h, {
      query: `query($ids: [ID!]!) { imagesByIds(ids: $ids) { ${IMAGE_FIELDS} urlStatus { cached expiresAt ttlSeconds accessCount refreshCount lastAccessAt } fresh: signedUrl(minTtl: 60) { url expiresAt refreshAt cached } } }`,
      variables: { ids: many },
    });
    expect(wide.codes).toEqual(['BAD_USER_INPUT']);
    const urls = await gqlRaw(h, { query: byName.get('ImageUrls')!.doc, variables: { ids: many } });
    expect(urls.body?.errors).toBeUndefined();
  });

  it('a subscription over its cost is refused before it starts', async () => {
    const many = Array.from({ length: 500 }, () => randomUUID());
    const urls = Array.from({ length: 10 }, (_, i) => `u${i}: signedUrl { url expiresAt refreshAt cached }`);
    const query = `subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId ${urls.join(' ')} } }`;
    const r = await gqlRaw(h, { query, variables: { ids: many } });
    expect(r.codes).toEqual(['BAD_USER_INPUT']);
    expect(r.body!.errors![0]!.message).toContain(String(MAX_COST));
  });

  it('introspection and GraphiQL are on outside production', async () => {
    const r = await gqlRaw(h, { query: '{ __schema { queryType { name } } }' });
    expect(r.body?.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    const page = await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/graphiql/i);
  });

  it('JSON bodies stop at 1 MiB, declared or streamed, as PAYLOAD_TOO_LARGE (413)', async () => {
    const token = await h.token('alice');
    const auth = { authorization: `Bearer ${token}` };
    const body = (pad: number) =>
      JSON.stringify({ query: '{ viewer { id } }', variables: { pad: 'x'.repeat(pad) } });
    const near = await postGraphql(h, body(1024 * 1024 - 200), auth);
    expect(near.body?.errors, near.text.slice(0, 200)).toBeUndefined();
    const over = await postGraphql(h, body(1024 * 1024 + 1), auth);
    expect(over.status).toBe(413);
    expect(over.codes).toEqual(['PAYLOAD_TOO_LARGE']);
    // The unread rest is not drained: the connection ends with the answer.
    expect(over.headers.get('connection')).toBe('close');
    expect(over.text).not.toContain('"http"');

    // Chunked (no Content-Length): counted as it arrives.
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"query":"{ viewer { id } }","variables":{"pad":"'));
      },
      pull(c) {
        sent += chunk.length;
        if (sent > 4 * 1024 * 1024) c.close();
        else c.enqueue(chunk);
      },
    });
    const chunked = await postGraphql(h, stream, { 'content-type': 'application/json', ...auth });
    expect(chunked.status).toBe(413);
    expect(chunked.codes).toEqual(['PAYLOAD_TOO_LARGE']);
  });

  it('multipart uploads keep their own, larger limit', async () => {
    const big = Buffer.concat([PNG, Buffer.alloc(3 * 1024 * 1024)]);
    const up = await uploadWith(
      h,
      `mutation($file: File!) { uploadImage(file: $file) { id byteSize } }`,
      big,
    );
    expect(up.body?.errors, up.text.slice(0, 300)).toBeUndefined();
    expect((up.body!.data!.uploadImage as { byteSize: number }).byteSize).toBe(big.length);
  });

  it('yoga’s own request errors carry codes of the error table', async () => {
    const invalid = await postGraphql(h, '{"query": ', {});
    expect(invalid.status).toBe(400);
    expect(invalid.codes).toEqual(['BAD_USER_INPUT']);
    const form = await postGraphql(h, 'query=%7Bviewer%7Bid%7D%7D', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    // CSRF prevention: a simple cross-site form post without the header is refused.
    expect(form.status).toBe(403);
    expect(form.codes).toEqual(['FORBIDDEN']);
    const put = await answer(
      await fetch(`${h.url}/graphql`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
    );
    expect(put.status).toBe(405);
    expect(put.codes).toEqual(['BAD_USER_INPUT']);
  });

  it('no CORS allow-list: a cross-origin caller gets no CORS headers (same origin only)', async () => {
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    const pre = await fetch(`${h.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-headers')).toBeNull();
  });
});

describe('GraphQL hardening: production with persisted operations only and a CORS allow-list', () => {
  let h: Harness;
  let dir: string;
  let ids: string[];
  const APP = 'https://app.example';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-persisted-'));
    const file = path.join(dir, 'persisted-operations.json');
    await writeFile(file, JSON.stringify(manifest));
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: {
        NODE_ENV: 'production',
        PROXY_TOKEN_SECRET: 'production-proxy-secret-0123456789',
        PERSISTED_OPERATIONS_FILE: file,
        PERSISTED_OPERATIONS_ONLY: 'true',
        CORS_ORIGINS: `${APP},http://localhost:5173`,
      },
    });
    ids = await seed(h, 'alice', 100);
  });
  afterAll(async () => {
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('every web operation runs by hash', async () => {
    const results = await runWebOperations(h, ids, (name, variables, token) =>
      gqlRaw(
        h,
        { variables, extensions: { persistedQuery: { version: 1, sha256Hash: byName.get(name)!.hash } } },
        { token },
      ),
    );
    expectAllFine(results);
  });

  it('every web operation runs as the web app sends it (full text with __typename)', async () => {
    const results = await runWebOperations(h, ids, (name, variables, token) =>
      gqlRaw(h, { query: apolloSpelling(byName.get(name)!.doc), variables }, { token }),
    );
    expectAllFine(results);
    const up = await uploadWith(h, apolloSpelling(byName.get('UploadImage')!.doc), PNG);
    expect(up.body?.errors, up.text).toBeUndefined();
    const event = await firstEvent(
      h,
      { query: byName.get('SignedUrlRefreshed')!.doc, variables: { ids: [ids[1]] } },
      ids[1]!,
    );
    expect(event).toContain('signedUrlRefreshed');
  });

  it('anything else is refused: FORBIDDEN for other documents, BAD_USER_INPUT for unknown hashes', async () => {
    const other = await gqlRaw(h, { query: '{ viewer { id isAdmin } images { totalCount } }' });
    expect(other.status).toBe(403);
    expect(other.codes).toEqual(['FORBIDDEN']);
    // A listed operation with one field more is another document.
    const grown = await gqlRaw(h, {
      query: byName.get('Viewer')!.doc.replace('isAdmin', 'isAdmin\n    __schema: id'),
    });
    expect(grown.codes).toEqual(['FORBIDDEN']);
    const upload = await uploadWith(h, 'mutation($file: File!) { uploadImage(file: $file) { id key } }', PNG);
    expect(upload.codes).toEqual(['FORBIDDEN']);
    const unknown = await gqlRaw(h, {
      extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } },
    });
    expect(unknown.codes).toEqual(['BAD_USER_INPUT']);
    const nothing = await gqlRaw(h, {});
    expect(nothing.codes).toEqual(['BAD_USER_INPUT']);
  });

  it('introspection is off, and field suggestions do not spell out the schema', async () => {
    // By hash there is no way to ask; as a listed document neither; the switch itself is
    // tested on a server that accepts any document below.
    const r = await gqlRaw(h, { query: '{ __schema { types { name } } }' });
    expect(r.codes).toEqual(['FORBIDDEN']);
  });

  it('CORS: listed origins get exactly their own origin back, others nothing', async () => {
    const call = (origin: string) =>
      fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({
          extensions: { persistedQuery: { version: 1, sha256Hash: byName.get('Viewer')!.hash } },
        }),
      });
    const ok = await call(APP);
    expect(ok.headers.get('access-control-allow-origin')).toBe(APP);
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
    expect((await call('http://localhost:5173')).headers.get('access-control-allow-origin')).toBe(
      'http://localhost:5173',
    );
    for (const origin of ['https://evil.example', 'https://app.example.evil.example', 'null']) {
      expect((await call(origin)).headers.get('access-control-allow-origin'), origin).toBeNull();
    }
    const pre = await fetch(`${h.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(APP);
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
  });
});

describe('GraphQL hardening: production accepting any document', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      driver: 'local',
      redis: 'memory',
      env: { NODE_ENV: 'production', PROXY_TOKEN_SECRET: 'production-proxy-secret-0123456789' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('introspection is FORBIDDEN (__schema and __type), __typename still works', async () => {
    for (const query of [
      '{ __schema { queryType { name } } }',
      '{ __type(name: "Image") { fields { name } } }',
    ]) {
      const r = await gqlRaw(h, { query });
      expect(r.codes, query).toEqual(['FORBIDDEN']);
      expect(r.body!.data ?? null).toBeNull();
    }
    const typename = await gqlRaw(h, { query: '{ __typename viewer { __typename id } }' });
    expect(typename.body?.data).toEqual({
      __typename: 'Query',
      viewer: { __typename: 'Viewer', id: 'alice' },
    });
  });

  it('no GraphiQL page (it needs introspection)', async () => {
    const page = await fetch(`${h.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toContain('text/html');
    expect(await page.text()).not.toMatch(/graphiql/i);
  });

  it('field suggestions are hidden', async () => {
    const r = await gqlRaw(h, { query: '{ viewer { isAdmn } imagez { totalCount } }' });
    expect(r.codes.length).toBeGreaterThan(0);
    expect(r.text).not.toMatch(/Did you mean/);
    expect(r.text).not.toContain('isAdmin');
    expect(r.text).not.toContain('"images"');
  });
});
