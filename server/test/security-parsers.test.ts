import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from './fixtures/images.js';
import { testRedisUrl } from './support/env.js';
import { type Harness, startHarness } from './support/harness.js';
import { proxyLinks } from './support/proxy.js';
import { postGraphql } from './support/raw-graphql.js';
import { UPLOAD_MUTATION, uploadFile } from './support/upload.js';

// The parsers that read client bytes, attacked through the running gateway: the SVG sniff and
// svgSize (uploads), the Range header (stream mode) and multipart part headers. Each attack once
// held the event loop from a fraction of a second to hours; here each must be answered at once,
// with a client status, while /healthz keeps answering and the event loop keeps turning.
//
// The app runs in this process, so a blocked parse would freeze the probes as well: their
// latencies and the event-loop delay are what show the node stayed responsive.

/**
 * Bounds for one hostile request through the whole stack (HTTP, auth, multipart, SQL), and for
 * the /healthz probes and event-loop delay around it: generous for a slow, loaded machine, far
 * below the attacks (0.3 s to hours with the old parsers).
 */
const REQUEST_MS = 1000;
const PROBE_MS = 250;
const LOOP_DELAY_MS = 250;

interface Responsiveness {
  elapsedMs: number;
  probes: number;
  probeMaxMs: number;
  loopDelayMaxMs: number;
}

/**
 * Runs `attack` while /healthz is probed every 10 ms and the event-loop delay is sampled; returns
 * the attack's result and what the probes saw.
 */
async function underProbe<T>(h: Harness, attack: () => Promise<T>): Promise<{ result: T } & Responsiveness> {
  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  const latencies: number[] = [];
  const statuses: number[] = [];
  let stop = false;
  const probing = (async () => {
    while (!stop) {
      const start = performance.now();
      const res = await fetch(`${h.url}/healthz`);
      await res.arrayBuffer();
      latencies.push(performance.now() - start);
      statuses.push(res.status);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  histogram.enable();
  const start = performance.now();
  let result: T;
  try {
    result = await attack();
  } finally {
    // One more probe after the attack, so even a short attack is bracketed.
    await new Promise((r) => setTimeout(r, 30));
    stop = true;
    await probing;
    histogram.disable();
  }
  const elapsedMs = performance.now() - start;
  expect(statuses.length).toBeGreaterThan(0);
  expect(new Set(statuses)).toEqual(new Set([200]));
  return {
    result,
    elapsedMs,
    probes: latencies.length,
    probeMaxMs: Math.max(...latencies),
    loopDelayMaxMs: histogram.max / 1e6,
  };
}

function expectResponsive(label: string, r: Responsiveness): void {
  console.info(
    `${label}: answered in ${r.elapsedMs.toFixed(1)} ms; /healthz × ${r.probes}, slowest ` +
      `${r.probeMaxMs.toFixed(1)} ms; event-loop delay max ${r.loopDelayMaxMs.toFixed(1)} ms`,
  );
  expect(r.elapsedMs, label).toBeLessThan(REQUEST_MS);
  expect(r.probeMaxMs, label).toBeLessThan(PROBE_MS);
  expect(r.loopDelayMaxMs, label).toBeLessThan(LOOP_DELAY_MS);
}

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

describe('/proxy/:id?mode=stream: the Range header', () => {
  let h: Harness;
  const png = makePng(40, 30, [255, 94, 58], [0, 122, 255]);
  let link: string;

  beforeAll(async () => {
    h = await startHarness({ redis: testRedisUrl() });
    const up = await uploadFile(h, png);
    if (!up.data) throw new Error(`upload failed: ${JSON.stringify(up.errors)}`);
    link = (await proxyLinks(h, up.data.uploadImage.id)).stream;
    await (await fetch(link)).arrayBuffer();
  });
  afterAll(async () => {
    await h?.close();
  });

  // Node strips whitespace at either end of a header value, so each of these ends in a byte that
  // keeps the spaces inside, where the old pattern backtracked over them.
  it.each([
    // Hung a node for minutes with the old pattern (adjacent optional-whitespace groups).
    ['"bytes=" + 7,500 spaces + "-" + 7,500 spaces + "x"', `bytes=${' '.repeat(7500)}-${' '.repeat(7500)}x`],
    // ~0.2 s of CPU each with the old pattern, so a burst of ten held the node for seconds.
    // (16 KB would not get here: Node answers 431 to request headers over 16 KB in all.)
    ['"bytes=" + 15,000 spaces + "x"', `bytes=${' '.repeat(15_000)}x`],
    ['"bytes=" + 15,000 spaces + "-x"', `bytes=${' '.repeat(15_000)}-x`],
  ])(
    'a burst of ten with Range %s: each 200 with the whole image, at once; /healthz keeps answering',
    async (label, range) => {
      const r = await underProbe(h, () =>
        Promise.all(
          Array.from({ length: 10 }, async () => {
            const res = await fetch(link, { headers: { range } });
            return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
          }),
        ),
      );
      expectResponsive(`ten streams with Range ${label}`, r);
      for (const answer of r.result) {
        expect(answer.status).toBe(200);
        expect(answer.body.equals(png)).toBe(true);
      }
    },
  );

  it('a well-formed range is still served as 206', async () => {
    const res = await fetch(link, { headers: { range: 'bytes = 0 - 9' } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(png.subarray(0, 10))).toBe(true);
  });
});
