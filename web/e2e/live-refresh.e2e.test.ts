import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GraphqlCall,
  imageStates,
  launchChromium,
  recordGraphql,
  scrollThrough,
  waitForVisibleLoaded,
} from './helpers/browser';
import { BucketCounter, type BucketRequest } from './helpers/bucket-counter';
import { Gateway } from './helpers/gateway';

interface Watch {
  errors: string[];
  /** Every src each image had, in order, with the time it was set. */
  srcs: Record<string, { src: string; at: number }[]>;
}

interface PageNode {
  id: string;
  key: string;
  byteSize: number;
  /** What a tile shows: the thumb preset's URL (the bucket serves the variant under the same key). */
  thumb: { url: string; expiresAt: string };
}

/** Records, from the first byte, every image load error and every src an image ever had. */
async function watchImages(page: Page): Promise<() => Promise<Watch>> {
  await page.addInitScript(() => {
    const w = window as unknown as { __watch: Watch };
    w.__watch = { errors: [], srcs: {} };
    document.addEventListener(
      'error',
      (e) => {
        if (e.target instanceof HTMLImageElement) w.__watch.errors.push(e.target.src);
      },
      true,
    );
    const note = (img: HTMLImageElement) => {
      const id = img.closest<HTMLElement>('.smart-image')?.dataset['imageId'];
      const src = img.getAttribute('src');
      if (!id || !src) return;
      const list = w.__watch.srcs[id] ?? [];
      w.__watch.srcs[id] = list;
      if (list.at(-1)?.src !== src) list.push({ src, at: Date.now() });
    };
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target instanceof HTMLImageElement) note(r.target);
        for (const n of r.addedNodes) {
          if (n instanceof HTMLImageElement) note(n);
          if (n instanceof HTMLElement) n.querySelectorAll('img').forEach(note);
        }
      }
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
  });
  return () => page.evaluate(() => (window as unknown as { __watch: Watch }).__watch);
}

async function pageNodes(graphql: GraphqlCall[]): Promise<Map<string, PageNode>> {
  const call = graphql.find((c) => c.operationName === 'GalleryPage');
  expect(call, 'the gallery asked for its page').toBeDefined();
  const answer = (await call!.response) as { data: { images: { edges: { node: PageNode }[] } } };
  return new Map(answer.data.images.edges.map((e) => [e.node.id, e.node]));
}

const expiresOf = (src: string) => Number(new URL(src).searchParams.get('e')) * 1000;

/** "key: n requests, b bytes" for a report line. */
function describeRequests(byKey: Map<string, BucketRequest[]>, keys: string[]): string {
  return keys
    .map((k) => {
      const rs = byKey.get(k) ?? [];
      return `${k.split('/').at(-1)}: ${rs.length} (${rs.reduce((n, r) => n + r.bytes, 0)} B)`;
    })
    .join(', ');
}

describe('live URL refresh', () => {
  let counter: BucketCounter;
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    // URLs live 20 s and a new one is pushed every 10 s: a one-minute visit outlives each
    // of them several times over. The page and every bucket URL go through the counting relay.
    counter = await BucketCounter.start();
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '20',
      URL_TTL_SECONDS: '20',
      REFRESH_AHEAD_SECONDS: '10',
      PUBLIC_URL: counter.url,
    });
    counter.forwardTo(gateway.port);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await counter?.close();
  });

  it('keeps every image whole for 60 s and downloads each shown image once; pushed URLs serve the next load', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const graphql = recordGraphql(page);
    const watch = await watchImages(page);

    const openedAt = Date.now();
    await page.goto(`${counter.url}/#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 20);
    await waitForVisibleLoaded(page);
    const nodes = await pageNodes(graphql);
    const first = await imageStates(page);
    const shown = first.filter((s) => s.src !== null);
    const below = first.filter((s) => s.src === null);
    expect(shown.length).toBeGreaterThanOrEqual(4);
    expect(below.length).toBeGreaterThanOrEqual(4);
    const shownKeys = shown.map((s) => nodes.get(s.id)!.key);

    // Look every half second for a minute: no image on screen may ever be anything but whole.
    let samples = 0;
    while (Date.now() - openedAt < 60_000) {
      for (const s of await imageStates(page)) {
        if (s.src === null) continue;
        const what = `${JSON.stringify(s)} at ${Date.now() - openedAt} ms`;
        expect(s.state, what).toBe('loaded');
        expect(s.naturalWidth, what).toBeGreaterThan(0);
      }
      samples++;
      await page.waitForTimeout(500);
    }
    expect(samples).toBeGreaterThan(60);

    const seen = await watch();
    expect(seen.errors).toEqual([]);
    const now = await imageStates(page);
    // Deliberately the reverse of what this test asserted before: a pushed URL no longer
    // replaces the src of a picture on screen (that re-downloaded every visible image once per
    // step). Each keeps the URL it was loaded from, for the whole minute, though that URL has
    // long expired: the picture is decoded, nothing needs fetching.
    for (const s of now.filter((x) => x.src !== null)) {
      expect(
        seen.srcs[s.id]?.map((h) => h.src),
        s.id,
      ).toEqual([nodes.get(s.id)!.thumb.url]);
      expect(expiresOf(s.src!)).toBeLessThan(Date.now());
    }

    // At the bucket: each shown image was fetched exactly once, whole, and nothing else was.
    const byKey = counter.perKey();
    console.info(
      `60 s open, ${shown.length} images shown, ${samples} samples; bucket requests per key: ` +
        describeRequests(byKey, shownKeys),
    );
    expect([...byKey.keys()].sort()).toEqual([...shownKeys].sort());
    for (const s of shown) {
      const requests = byKey.get(nodes.get(s.id)!.key)!;
      expect(
        requests.map((r) => [r.method, r.status]),
        s.id,
      ).toEqual([['GET', 200]]);
      // A thumbnail, not the original.
      expect(requests[0]!.bytes, s.id).toBeGreaterThan(0);
      expect(requests[0]!.bytes, s.id).toBeLessThan(nodes.get(s.id)!.byteSize);
    }

    // Pushed, not polled: one subscription stream, no refetches, no forced re-signs.
    expect(graphql.filter((c) => c.stream)).toHaveLength(1);
    const names = graphql.filter((c) => !c.stream).map((c) => c.operationName);
    expect(names.filter((n) => n === 'GalleryPage')).toHaveLength(1);
    expect(
      names.filter((n) => n === 'ImageUrls' || n === 'ImageVariantUrls' || n === 'RefreshSignedUrls'),
    ).toEqual([]);
    const callsAfterMinute = graphql.length;

    // The pushed URLs were kept for the next load. Make one: the first image's picture is
    // lost (its load fails). It goes straight to the newest pushed URL, which has life left,
    // with no GraphQL request, no backoff, and one more fetch of that key.
    const probe = shown[0]!;
    const probeKey = nodes.get(probe.id)!.key;
    await page.$eval(`.smart-image[data-image-id="${probe.id}"] img`, (img) =>
      img.dispatchEvent(new Event('error')),
    );
    await page.waitForFunction(
      (id) =>
        document.querySelector<HTMLElement>(`.smart-image[data-image-id="${id}"]`)?.dataset['state'] ===
        'loaded',
      probe.id,
      { timeout: 10_000 },
    );
    const reloaded = (await imageStates(page)).find((s) => s.id === probe.id)!;
    expect(reloaded.src).not.toBe(probe.src);
    expect(reloaded.naturalWidth).toBeGreaterThan(0);
    const probeRequests = counter.perKey().get(probeKey)!;
    expect(probeRequests.map((r) => r.status)).toEqual([200, 200]);
    // The newest step's URL: a new one was pushed every 10 s, each living 20 s, so it had more
    // than a few seconds left (not an early push kept by mistake).
    expect(probeRequests[1]!.expiresAt - probeRequests[1]!.at).toBeGreaterThan(5_000);
    expect(graphql.length).toBe(callsAfterMinute);
    const errorsBeforeScroll = (await watch()).errors.length;
    expect(errorsBeforeScroll).toBe(1); // the one made above

    // Images scrolled into view now: their page URLs expired long ago (nothing is pushed for an
    // image off screen). Each loads with a URL that has life left — read, not re-signed — at
    // its first try: no error, one fetch, a 200.
    const countsBefore = new Map([...counter.perKey()].map(([k, rs]) => [k, rs.length]));
    await scrollThrough(page);
    const after = await imageStates(page);
    expect(after).toHaveLength(20);
    for (const s of after) {
      expect(s.state, s.id).toBe('loaded');
      expect(s.naturalWidth, s.id).toBeGreaterThan(0);
      expect(s.source, s.id).toBe('signed');
    }
    expect((await watch()).errors).toHaveLength(errorsBeforeScroll);
    const final = counter.perKey();
    for (const b of below) {
      const node = nodes.get(b.id)!;
      expect(expiresOf(node.thumb.url), `${b.id}'s page URL`).toBeLessThan(Date.now());
      const requests = final.get(node.key) ?? [];
      expect(
        requests.map((r) => r.status),
        b.id,
      ).toEqual([200]);
      expect(requests[0]!.expiresAt, b.id).toBeGreaterThan(requests[0]!.at);
      expect(requests[0]!.bytes, b.id).toBeGreaterThan(0);
      expect(requests[0]!.bytes, b.id).toBeLessThan(node.byteSize);
    }
    for (const [key, n] of countsBefore) expect(final.get(key)?.length, key).toBe(n); // no re-fetch
    const late = graphql.slice(callsAfterMinute).map((c) => c.operationName);
    expect(late).toContain('ImageVariantUrls'); // the tiles' preset: thumb URLs with their srcset
    expect(late).not.toContain('RefreshSignedUrls'); // not a load error: no forced re-sign
    console.info(
      `scrolled in after a minute: ${below.length} images, bucket requests per key: ` +
        describeRequests(
          final,
          below.map((b) => nodes.get(b.id)!.key),
        ),
    );
    await page.close();
  });
});

describe('reload within one step', () => {
  let counter: BucketCounter;
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    // The default TTL and refresh-ahead: a step of 45 minutes, so a load and a reload a few
    // seconds apart can be placed inside one step of every image (with 10 s steps, 8 images'
    // boundaries, offset by id, fall on average 1.25 s apart).
    counter = await BucketCounter.start();
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: '8', PUBLIC_URL: counter.url });
    counter.forwardTo(gateway.port);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await counter?.close();
  });

  it('loads every image from the browser cache: 0 bucket requests', async () => {
    // Start where no image's step ends within the next 30 s (wait out one that does).
    for (;;) {
      const data = await gateway.graphql<{
        images: { edges: { node: { signedUrl: { refreshAt: string } } }[] };
      }>('{ images(first: 8) { edges { node { signedUrl { refreshAt } } } } }');
      const next = Math.min(...data.images.edges.map((e) => Date.parse(e.node.signedUrl.refreshAt)));
      if (next - Date.now() > 30_000) break;
      await new Promise((r) => setTimeout(r, next - Date.now() + 1000));
    }

    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${counter.url}/#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 8);
    await waitForVisibleLoaded(page);
    const before = (await imageStates(page)).filter((s) => s.src !== null);
    expect(before.length).toBeGreaterThan(0);
    expect(counter.requests.map((r) => r.status)).toEqual(before.map(() => 200));

    counter.reset();
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 8);
    await waitForVisibleLoaded(page);
    const after = (await imageStates(page)).filter((s) => s.src !== null);
    // Same step, same URL strings: the browser's cache key did not change.
    expect(after.map((s) => [s.id, s.src])).toEqual(before.map((s) => [s.id, s.src]));
    for (const s of after) expect(s.naturalWidth, s.id).toBeGreaterThan(0);
    const seen = counter.requests.map(
      (r) => `${r.key} ${r.status}${r.conditional ? ' (revalidation)' : ''} cache-control: ${r.cacheControl}`,
    );
    console.info(`reload: ${after.length} images shown, ${seen.length} bucket requests`);
    expect(seen, 'every image of the reloaded page from the browser cache').toEqual([]);
    await page.close();
  });
});
