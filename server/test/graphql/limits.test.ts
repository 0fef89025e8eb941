import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_COST } from '../../src/http/plugins/use-cost-limit.js';
import { QUERY_LIMITS } from '../../src/http/plugins/use-query-limits.js';
import { makePng } from '../fixtures/images.js';
import { type Harness, startHarness } from '../support/harness.js';
import { gqlRaw, postGraphql } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';
import { uploadWithQuery } from '../support/upload.js';
import { webOperations } from '../support/web-operations.js';

const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);
const IMAGE_FIELDS =
  'id key contentType byteSize width height createdAt signedUrl { url expiresAt } proxyUrl';

describe('GraphQL limits (the development defaults)', () => {
  let h: Harness;

  beforeAll(async () => {
    // The large upload is a PNG padded after IEND, which a stripped PNG is stored without
    // (UPLOAD_STRIP_METADATA): stored as it came, its byteSize is the upload's.
    h = await startHarness({ driver: 'local', redis: 'memory', env: { UPLOAD_STRIP_METADATA: 'false' } });
    await seed(h, 'alice', 100);
  });
  afterAll(async () => {
    await h?.close();
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
    const urls = await gqlRaw(h, { query: webOperations.get('ImageUrls')!.doc, variables: { ids: many } });
    expect(urls.body?.errors).toBeUndefined();
    // Nor its ImageVariantUrls (a preset's URL and srcset for the tiles of a whole subscription).
    const variants = await gqlRaw(h, {
      query: webOperations.get('ImageVariantUrls')!.doc,
      variables: { ids: many, preset: 'thumb' },
    });
    expect(variants.body?.errors).toBeUndefined();
  });

  it('a subscription over its cost is refused before it starts', async () => {
    const many = Array.from({ length: 500 }, () => randomUUID());
    const urls = Array.from({ length: 10 }, (_, i) => `u${i}: signedUrl { url expiresAt refreshAt cached }`);
    const query = `subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId ${urls.join(' ')} } }`;
    const r = await gqlRaw(h, { query, variables: { ids: many } });
    expect(r.codes).toEqual(['BAD_USER_INPUT']);
    expect(r.body!.errors![0]!.message).toContain(String(MAX_COST));
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

  it('JSON nested past 64 levels is refused before it is parsed (BAD_USER_INPUT, 400), fast', async () => {
    const query = 'query($v: [ID!]) { viewer { id } }';
    // A megabyte of brackets: JSON.parse alone held the event loop for ~0.4 s.
    const deep = `{"query":${JSON.stringify(query)},"variables":{"v":${'['.repeat(1_040_000)}`;
    const started = performance.now();
    const r = await postGraphql(h, deep, { 'x-graphql-yoga-csrf': '1' });
    expect(r.status).toBe(400);
    expect(r.codes).toEqual(['BAD_USER_INPUT']);
    expect(r.text).toMatch(/nested deeper than 64/);
    expect(performance.now() - started).toBeLessThan(1000);
    // Brackets inside strings do not count; real variables nest a few levels and pass.
    const fine = JSON.stringify({
      query: 'query($after: String) { images(first: 1, after: $after) { totalCount } }',
      variables: { after: null, pad: `${'['.repeat(5000)}`, nested: [[[[[{ a: [1] }]]]]] },
    });
    const ok = await postGraphql(h, fine, {
      'x-graphql-yoga-csrf': '1',
      authorization: `Bearer ${await h.token('alice')}`,
    });
    expect(ok.status).toBe(200);
    // Form bodies carry their JSON percent-encoded: openers are counted there, encoded or not.
    const form = `query=${encodeURIComponent(query)}&variables=${'%5B'.repeat(300_000)}`;
    const f = await postGraphql(h, form, {
      'content-type': 'application/x-www-form-urlencoded',
      'x-graphql-yoga-csrf': '1',
    });
    expect(f.status).toBe(400);
    expect(f.codes).toEqual(['BAD_USER_INPUT']);
  });

  it('a POST of a type no parser reads is UNSUPPORTED_MEDIA_TYPE (415), with the JSON of the error table', async () => {
    const auth = { authorization: `Bearer ${await h.token('alice')}`, 'x-graphql-yoga-csrf': '1' };
    for (const type of ['text/plain', 'application/xml', 'application/jsonx']) {
      const r = await postGraphql(h, '{"query":"{ viewer { id } }"}', { 'content-type': type, ...auth });
      expect(r.status, type).toBe(415);
      expect(r.codes, type).toEqual(['UNSUPPORTED_MEDIA_TYPE']);
      expect(r.body!.errors![0]!.message).toContain(`not '${type}'`);
      expect(r.body!.errors![0]!.message).toContain('application/json');
    }
  });

  it('a refusal of a body within the limit comes after the body, so a client still sending gets it, not a reset', async () => {
    // The client asks for Connection: close, as a client without an agent does: node closes the
    // socket after the answer, and an answer sent before the body would meet the rest of it.
    const refusals = [
      {
        name: 'a type no parser reads',
        headers: { 'x-graphql-yoga-csrf': '1' },
        statusLine: 'HTTP/1.1 415 Unsupported Media Type',
        code: 'UNSUPPORTED_MEDIA_TYPE',
      },
      { name: 'no CSRF header', headers: {}, statusLine: 'HTTP/1.1 403 Forbidden', code: 'FORBIDDEN' },
    ];
    const half = Buffer.alloc(256 * 1024, 'a');
    for (const refusal of refusals) {
      const u = new URL(h.url);
      const socket = net.connect(Number(u.port), u.hostname);
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const received: Buffer[] = [];
      let receivedBeforeRest = 0;
      let restWritten = false;
      const errors: string[] = [];
      socket.on('data', (b: Buffer) => {
        received.push(b);
        if (!restWritten) receivedBeforeRest += b.length;
      });
      socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const head = [
        'POST /graphql HTTP/1.1',
        `host: ${u.host}`,
        'content-type: text/plain',
        `content-length: ${half.length * 2}`,
        'connection: close',
        ...Object.entries(refusal.headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      socket.write(half);
      // Time for an answer that does not wait for the body to be sent before the rest is.
      await new Promise((r) => setTimeout(r, 200));
      restWritten = true;
      socket.end(half);
      await closed;
      expect(errors, refusal.name).toEqual([]);
      expect(receivedBeforeRest, `${refusal.name}: bytes answered before the body was all sent`).toBe(0);
      const text = Buffer.concat(received).toString('utf8');
      expect(text.split('\r\n')[0], refusal.name).toBe(refusal.statusLine);
      expect(text, refusal.name).toContain(`"code":"${refusal.code}"`);
    }
  });

  it('multipart uploads keep their own, larger limit', async () => {
    const big = Buffer.concat([PNG, Buffer.alloc(3 * 1024 * 1024)]);
    const up = await uploadWithQuery(
      h,
      `mutation($file: File!) { uploadImage(file: $file) { id byteSize } }`,
      big,
    );
    expect(up.body?.errors, up.text.slice(0, 300)).toBeUndefined();
    expect((up.body!.data!.uploadImage as { byteSize: number }).byteSize).toBe(big.length);
  });
});
