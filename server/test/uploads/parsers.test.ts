import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../fixtures/images.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { postGraphql } from '../support/raw-graphql.js';
import { expectResponsive, underProbe } from '../support/responsiveness.js';
import { UPLOAD_MUTATION, uploadFile } from '../support/upload.js';

// The parsers that read upload bytes, attacked through the running gateway: the SVG sniff and
// svgSize, and multipart part headers. Each attack must be answered at once, with a client
// status, while /healthz keeps answering and the event loop keeps turning.

async function imageRows(h: Harness): Promise<number> {
  const r = await h.db.kysely
    .selectFrom('images')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * An ordinary upload, an ordinary refusal and a probe first, so the first request's one-off work
 * (compiling the schema, the first error answer) does not count against the attack's bounds.
 */
async function warmUp(h: Harness): Promise<void> {
  const up = await uploadFile(h, makePng(2, 2, [0, 0, 0], [255, 255, 255]));
  if (!up.data) throw new Error(`warm-up upload failed: ${JSON.stringify(up.errors)}`);
  const refused = await uploadFile(h, Buffer.from('plain text, not an image'));
  expect(refused.errors?.[0]?.extensions?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  await (await fetch(`${h.url}/healthz`)).arrayBuffer();
}

// "<!---->" repeated k times and one more byte: the old SVG prolog pattern tried 2^k ways.
const SIXTY_COMMENTS = Buffer.from(`${'<!---->'.repeat(60)}x`);

describe('uploads: the SVG sniff (SVG refused, the default)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: testRedisUrl() });
    await warmUp(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('60 empty comments and a byte are UNSUPPORTED_MEDIA_TYPE at once; /healthz keeps answering', async () => {
    const rows = await imageRows(h);
    const r = await underProbe(h, () =>
      uploadFile(h, SIXTY_COMMENTS, { name: 'x.svg', type: 'image/svg+xml' }),
    );
    expectResponsive('upload of 60 × "<!---->" + byte', r);
    expect(r.result.errors?.[0]?.extensions?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await imageRows(h)).toBe(rows);
  });

  it('a file part whose quoted filename never ends (8 KB) is BAD_USER_INPUT and stores nothing', async () => {
    const boundary = 'security-parsers-boundary';
    const part = (disposition: string, body: string | Buffer, type?: string) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`,
        ),
        Buffer.from(body),
        Buffer.from('\r\n'),
      ]);
    const body = (filename: string) =>
      Buffer.concat([
        part(
          'form-data; name="operations"',
          JSON.stringify({ query: UPLOAD_MUTATION, variables: { file: null } }),
        ),
        part('form-data; name="map"', JSON.stringify({ 0: ['variables.file'] })),
        part(
          `form-data; name="0"; filename="${filename}`,
          makePng(2, 2, [0, 0, 0], [255, 255, 255]),
          'image/png',
        ),
        Buffer.from(`--${boundary}--\r\n`),
      ]);
    const headers = {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'x-graphql-yoga-csrf': '1',
      authorization: `Bearer ${await h.token('alice')}`,
    };
    const rows = await imageRows(h);
    const refused = await postGraphql(h, body('a'.repeat(8192)), headers);
    expect(refused.status, refused.text.slice(0, 300)).toBe(400);
    expect(refused.codes).toEqual(['BAD_USER_INPUT']);
    expect(refused.text).toContain('file name');
    expect(await imageRows(h)).toBe(rows);
    // The same part with an ordinary name (its closing quote added here) is an upload.
    const accepted = await postGraphql(h, body('photo.png"'), headers);
    expect(accepted.status, accepted.text.slice(0, 300)).toBe(200);
    expect(accepted.codes).toEqual([]);
    expect(await imageRows(h)).toBe(rows + 1);
  });
});

describe('uploads: the SVG sniff and svgSize (SVG accepted)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: testRedisUrl(), env: { UPLOAD_ALLOW_SVG: 'true' } });
    await warmUp(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('60 empty comments and a byte are UNSUPPORTED_MEDIA_TYPE at once', async () => {
    const r = await underProbe(h, () => uploadFile(h, SIXTY_COMMENTS));
    expectResponsive('upload of 60 × "<!---->" + byte, SVG allowed', r);
    expect(r.result.errors?.[0]?.extensions?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('an SVG whose width is 1 and 60,000 spaces is read at once (an SVG of unknown size)', async () => {
    const svg = Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="1${' '.repeat(60_000)}x" height="1"></svg>`,
    );
    const r = await underProbe(h, () => uploadFile(h, svg));
    expectResponsive('upload of an SVG with a 60,000-space width', r);
    expect(r.result.errors).toBeUndefined();
    expect(r.result.data?.uploadImage).toMatchObject({
      contentType: 'image/svg+xml',
      width: null,
      height: null,
    });
  });
});
