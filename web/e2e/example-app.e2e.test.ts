import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  imageStates,
  launchChromium,
  recordGraphql,
  screenshot,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';
import { StaticSite } from './helpers/static-site';

// examples/vue-apollo: an existing Vue + Apollo app (its own client, its own query) that only
// added @signet/vue, the SignetImage fragment and createSignet. Built by `npm run build` against
// the package's dist, served on its own origin; the gateway allows that origin (CORS_ORIGINS).
const EXAMPLE_DIST = fileURLToPath(new URL('../../examples/vue-apollo/dist', import.meta.url));
const COUNT = 12;

const expiresOf = (src: string) => Number(new URL(src).searchParams.get('e')) * 1000;

/** Counts image load errors from the first byte of the page. */
async function countErrors(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { __loadErrors: number };
    w.__loadErrors = 0;
    document.addEventListener(
      'error',
      (e) => {
        if (e.target instanceof HTMLImageElement) w.__loadErrors++;
      },
      true,
    );
  });
  return () => page.evaluate(() => (window as unknown as { __loadErrors: number }).__loadErrors);
}

/** Each photo's id and the href of its "original" link (the app renders its query's signedUrl.url). */
function links(page: Page): Promise<{ id: string; href: string }[]> {
  return page.$$eval('.photos__item', (items) =>
    items.map((li) => ({
      id: li.querySelector<HTMLElement>('.smart-image')?.dataset['imageId'] ?? '',
      href: li.querySelector('a')?.href ?? '',
    })),
  );
}

describe('examples/vue-apollo with the built @signet/vue', () => {
  let site: StaticSite;
  let gateway: Gateway;
  let browser: Browser;
  let target: string;

  beforeAll(async () => {
    site = await StaticSite.start(EXAMPLE_DIST);
    // URLs live 20 s and are re-signed 10 s before they run out: a push within the first test.
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: String(COUNT),
      URL_TTL_SECONDS: '20',
      REFRESH_AHEAD_SECONDS: '10',
      CORS_ORIGINS: site.url,
    });
    const data = await gateway.graphql<{ images: { edges: { node: { id: string } }[] } }>(
      `{ images(first: ${COUNT}) { edges { node { id } } } }`,
    );
    target = data.images.edges[0]!.node.id; // the first photo: top left, on screen
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await site?.close();
  });

  const open = (page: Page) => page.goto(`${site.url}/?api=${encodeURIComponent(`${gateway.url}/graphql`)}`);

  it('loads its images through signed URLs from another origin, and a pushed URL reaches its own query while the pictures stay whole', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = await countErrors(page);
    const graphql = recordGraphql(page);
    await open(page);
    await page.waitForFunction((n) => document.querySelectorAll('.smart-image').length === n, COUNT);
    await waitForVisibleLoaded(page);
    await screenshot(page, 'example-app');

    // The app's own query, cross-origin, carrying the fragment's fields.
    const photos = graphql.find((c) => c.operationName === 'Photos');
    expect(photos, 'the app asked for its page').toBeDefined();
    expect(photos!.request.url()).toBe(`${gateway.url}/graphql`);
    const answer = (await photos!.response) as {
      data: { images: { edges: { node: { id: string; proxyUrl: string; signedUrl: { url: string } } }[] } };
    };
    const nodes = answer.data.images.edges.map((e) => e.node);
    expect(nodes).toHaveLength(COUNT);
    for (const node of nodes) expect(new URL(node.proxyUrl).pathname).toBe(`/proxy/${node.id}`);

    const shown = (await imageStates(page)).filter((s) => s.src !== null);
    expect(shown.length).toBeGreaterThanOrEqual(4);
    for (const image of shown) {
      expect(image.state, image.id).toBe('loaded');
      expect(image.source, image.id).toBe('signed');
      expect(image.naturalWidth, image.id).toBeGreaterThan(0);
      expect(image.src, image.id).toBe(nodes.find((n) => n.id === image.id)!.signedUrl.url);
      expect(new URL(image.src!).origin).toBe(gateway.url);
      expect(new URL(image.src!).pathname.startsWith('/local-bucket/')).toBe(true);
    }

    // The package's one live stream (SSE, through its own link) covers the images on screen.
    await expect
      .poll(
        () =>
          graphql
            .filter((c) => c.stream && c.operationName === 'SignedUrlRefreshed')
            .map((c) => (c.request.postDataJSON() as { variables: { ids: string[] } }).variables.ids)
            .at(-1)
            ?.sort() ?? [],
        { timeout: 10_000 },
      )
      .toEqual(shown.map((s) => s.id).sort());

    // A URL pushed by the gateway is written into the app's Apollo cache: its own query re-renders
    // with it (the "original" link), while the picture on screen keeps the src it loaded from.
    const before = new Map((await links(page)).map((l) => [l.id, l.href]));
    let pushed: { id: string; href: string } | undefined;
    await expect
      .poll(
        async () => {
          pushed = (await links(page)).find(
            (l) => shown.some((s) => s.id === l.id) && expiresOf(l.href) > expiresOf(before.get(l.id)!),
          );
          return pushed !== undefined;
        },
        { timeout: 45_000, interval: 500 },
      )
      .toBe(true);
    expect((await fetch(pushed!.href, { method: 'HEAD' })).status).toBe(200);
    for (const image of (await imageStates(page)).filter((s) => s.src !== null)) {
      const first = shown.find((s) => s.id === image.id);
      if (first) expect(image.src, image.id).toBe(first.src);
      expect(image.state, image.id).toBe('loaded');
      expect(image.naturalWidth, image.id).toBeGreaterThan(0);
    }
    // Pushed, not asked for: no forced re-sign, and no picture broke.
    expect(graphql.filter((c) => c.operationName === 'RefreshSignedUrls')).toHaveLength(0);
    expect(await errors()).toBe(0);
    await page.close();
  });

  it('retries a failed load through refreshSignedUrls and shows the picture from a signed URL again', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = await countErrors(page);
    const graphql = recordGraphql(page);
    // The target's first bucket request never connects (a dropped connection); later ones do.
    let refused = 0;
    await page.route(
      (url) => url.pathname.startsWith('/local-bucket/') && url.pathname.includes(target),
      (route) => {
        if (refused++ === 0) return route.abort('connectionrefused');
        return route.continue();
      },
    );
    await open(page);
    const el = page.locator(`.smart-image[data-image-id="${target}"]`);
    await el.and(page.locator('[data-state=loaded]')).waitFor({ timeout: 30_000 });
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(await el.getAttribute('data-source')).toBe('signed');
    const src = await el.locator('img').getAttribute('src');
    expect(new URL(src!).pathname.startsWith('/local-bucket/')).toBe(true);
    expect(await el.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
    // One re-sign was asked for this image; the one failed load is the only one on the page.
    const tries = graphql.filter(
      (c) =>
        c.operationName === 'RefreshSignedUrls' &&
        (c.request.postDataJSON() as { variables: { ids: string[] } }).variables.ids.includes(target),
    );
    expect(tries).toHaveLength(1);
    expect(await errors()).toBe(1);
    await page.close();
  });

  it('falls back to the proxy link when the bucket cannot be reached for an image', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const graphql = recordGraphql(page);
    let refused = 0;
    await page.route(
      (url) => url.pathname.startsWith('/local-bucket/') && url.pathname.includes(target),
      (route) => {
        refused++;
        return route.abort('connectionrefused');
      },
    );
    await open(page);
    const el = page.locator(`.smart-image[data-image-id="${target}"]`);
    await el.and(page.locator('[data-state=loaded]')).waitFor({ timeout: 30_000 });
    expect(await el.getAttribute('data-source')).toBe('proxy');
    const src = await el.locator('img').getAttribute('src');
    expect(new URL(src!).origin).toBe(gateway.url);
    expect(new URL(src!).pathname).toBe(`/proxy/${target}`);
    expect(await el.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
    // Three retries with newer URLs came first, with backoff between them: the first load and
    // three retries all failed at the bucket. A retry takes a URL pushed or refetched during its
    // backoff when one came (the page's live updates), else asks refreshSignedUrls for one, so
    // how many of the three were asked for depends on timing — never more than three.
    expect(refused).toBeGreaterThanOrEqual(4);
    const tries = graphql.filter(
      (c) =>
        c.operationName === 'RefreshSignedUrls' &&
        (c.request.postDataJSON() as { variables: { ids: string[] } }).variables.ids.includes(target),
    );
    expect(tries.length).toBeGreaterThanOrEqual(1);
    expect(tries.length).toBeLessThanOrEqual(3);
    await page.close();
  });

  it('ends in an error state whose Retry button recovers once the network is back', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const blocked = (url: URL) =>
      (url.pathname.startsWith('/local-bucket/') && url.pathname.includes(target)) ||
      url.pathname === `/proxy/${target}`;
    await page.route(blocked, (route) => route.abort('connectionrefused'));
    await open(page);
    const el = page.locator(`.smart-image[data-image-id="${target}"]`);
    await el.and(page.locator('[data-state=error]')).waitFor({ timeout: 30_000 });
    expect(await el.getByText('Couldn’t load this image').isVisible()).toBe(true);

    await page.unroute(blocked);
    await el.getByRole('button', { name: /^Retry loading/ }).click();
    await el.and(page.locator('[data-state=loaded]')).waitFor({ timeout: 30_000 });
    expect(['signed', 'proxy']).toContain(await el.getAttribute('data-source'));
    expect(await el.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
    await page.close();
  });
});
