import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../fixtures/images.js';
import { type Harness, startHarness } from '../support/harness.js';
import { gqlRaw, type RawGql } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';
import { uploadWithQuery } from '../support/upload.js';
import { apolloSpelling, webManifest, webOperations } from '../support/web-operations.js';

const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);

/** Runs every operation of the web app, each sent through `send`. */
async function runWebOperations(
  h: Harness,
  ids: string[],
  send: (name: string, variables: Record<string, unknown>, token: string) => Promise<RawGql>,
): Promise<Record<string, RawGql>> {
  const alice = await h.token('alice');
  const admin = await h.token('alice', { role: 'admin' });
  const out: Record<string, RawGql> = {};
  out.ImagePresets = await send('ImagePresets', {}, alice);
  out.GalleryPage = await send('GalleryPage', { first: 100 }, alice);
  // A gateway without the thumb preset: the same document asks for the originals instead.
  out.GalleryPageOfOriginals = await send('GalleryPage', { first: 100, thumb: false }, alice);
  out.ImageUrls = await send('ImageUrls', { ids }, alice);
  out.ImageVariantUrls = await send('ImageVariantUrls', { ids, preset: 'thumb' }, alice);
  out.ImageDetail = await send('ImageDetail', { id: ids[0] }, alice);
  out.ImageById = await send('ImageById', { id: ids[0] }, alice);
  out.RefreshSignedUrls = await send('RefreshSignedUrls', { ids: ids.slice(0, 1) }, alice);
  out.DeleteImage = await send('DeleteImage', { id: randomUUID() }, alice);
  out.SetImageVisibility = await send('SetImageVisibility', { id: ids[1], visibility: 'PUBLIC' }, alice);
  out.Viewer = await send('Viewer', {}, alice);
  out.UploadLimits = await send('UploadLimits', {}, alice);
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
  // The web app's own re-sign (a persisted-only server runs nothing else). It publishes only what
  // it signs, and the operations before cached this image's URL for the step: drop it first.
  await h.container.urls.purge([id]);
  await gqlRaw(h, { query: webOperations.get('RefreshSignedUrls')!.doc, variables: { ids: [id] } });
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

describe('persisted operations: the web app’s documents (development)', () => {
  let h: Harness;
  let ids: string[];

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory' });
    ids = await seed(h, 'alice', 100);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the web app has its 14 operations, and each one passes every limit and runs', async () => {
    expect([...webOperations.keys()].sort()).toEqual([
      'DeleteImage',
      'GalleryPage',
      'ImageById',
      'ImageDetail',
      'ImagePresets',
      'ImageUrls',
      'ImageVariantUrls',
      'RefreshSignedUrls',
      'SetImageVisibility',
      'SignedUrlRefreshed',
      'UploadImage',
      'UploadLimits',
      'UrlStats',
      'Viewer',
    ]);
    const results = await runWebOperations(h, ids, (name, variables, token) =>
      gqlRaw(h, { query: apolloSpelling(webOperations.get(name)!.doc), variables }, { token }),
    );
    expectAllFine(results);
    const up = await uploadWithQuery(h, apolloSpelling(webOperations.get('UploadImage')!.doc), PNG);
    expect(up.body?.errors, up.text).toBeUndefined();
    const event = await firstEvent(
      h,
      { query: apolloSpelling(webOperations.get('SignedUrlRefreshed')!.doc), variables: { ids: [ids[0]] } },
      ids[0]!,
    );
    expect(event).toContain('signedUrlRefreshed');
    expect(event).not.toContain('errors');
  });
});

describe('persisted operations: production with persisted operations only and a CORS allow-list', () => {
  let h: Harness;
  let dir: string;
  let ids: string[];
  const APP = 'https://app.example';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-persisted-'));
    const file = path.join(dir, 'persisted-operations.json');
    await writeFile(file, JSON.stringify(webManifest));
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
        {
          variables,
          extensions: { persistedQuery: { version: 1, sha256Hash: webOperations.get(name)!.hash } },
        },
        { token },
      ),
    );
    expectAllFine(results);
  });

  it('every web operation runs as the web app sends it (full text with __typename)', async () => {
    const results = await runWebOperations(h, ids, (name, variables, token) =>
      gqlRaw(h, { query: apolloSpelling(webOperations.get(name)!.doc), variables }, { token }),
    );
    expectAllFine(results);
    const up = await uploadWithQuery(h, apolloSpelling(webOperations.get('UploadImage')!.doc), PNG);
    expect(up.body?.errors, up.text).toBeUndefined();
    const event = await firstEvent(
      h,
      { query: webOperations.get('SignedUrlRefreshed')!.doc, variables: { ids: [ids[1]] } },
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
      query: webOperations.get('Viewer')!.doc.replace('isAdmin', 'isAdmin\n    __schema: id'),
    });
    expect(grown.codes).toEqual(['FORBIDDEN']);
    const upload = await uploadWithQuery(
      h,
      'mutation($file: File!) { uploadImage(file: $file) { id key } }',
      PNG,
    );
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
          extensions: { persistedQuery: { version: 1, sha256Hash: webOperations.get('Viewer')!.hash } },
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
