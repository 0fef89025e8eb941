import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  imageStates,
  launchChromium,
  screenshot,
  scrollThrough,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';
import { photo, type Uploaded, uploadPhoto } from './helpers/photos';

const COUNT = 24;
/** The local driver names a variant in `v=`: `<w>x<h>-<fit>-<format>-<quality>` (server/src/storage/variant.ts). */
const THUMB = /[?&]v=\d+x\d+-cover-webp-75(&|$)/;
const MEDIUM = /[?&]v=\d+x\d+-inside-webp-80(&|$)/;

interface ImageResponse {
  url: string;
  status: number;
  type: string;
  bytes: number;
}

/** Every image response the page receives from the gateway (bucket and proxy), with its body size. */
function recordImageResponses(page: Page, origin: string): { done: () => Promise<ImageResponse[]> } {
  const pending: Promise<ImageResponse | null>[] = [];
  page.on('response', (response) => {
    const request = response.request();
    if (request.resourceType() !== 'image' || !response.url().startsWith(origin)) return;
    pending.push(
      response.body().then(
        (body) => ({
          url: response.url(),
          status: response.status(),
          type: response.headers()['content-type'] ?? '',
          bytes: body.length,
        }),
        () => null, // a redirect or an aborted body has none
      ),
    );
  });
  return { done: async () => (await Promise.all(pending)).filter((r): r is ImageResponse => r !== null) };
}

describe('variants in the gallery: thumbnails, placeholders, the detail view', () => {
  let gateway: Gateway;
  let browser: Browser;
  let uploaded: Uploaded[] = [];

  beforeAll(async () => {
    gateway = await Gateway.start({ SEED_DEMO: 'false' });
    browser = await launchChromium();
    // 24 photo-like JPEGs of 2400×1600, uploaded as a user would (through the gateway).
    uploaded = [];
    for (let i = 0; i < COUNT; i++) {
      uploaded.push(await uploadPhoto(gateway, await photo(2400, 1600, i + 1), `photo-${i + 1}.jpg`));
    }
    // Placeholders are made at upload (or by the backfill job soon after): wait until all are there.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const data = await gateway.graphql<{ images: { edges: { node: { placeholder: string | null } }[] } }>(
        `{ images(first: ${COUNT}) { edges { node { placeholder } } } }`,
      );
      if (data.images.edges.every((e) => e.node.placeholder)) break;
      if (Date.now() > deadline) throw new Error('placeholders were not computed within 60 s');
      await new Promise((r) => setTimeout(r, 500));
    }
  }, 300_000); // 24 photos made and uploaded: minutes on a loaded 2-core machine

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('tiles load thumbnails through srcset: ≤ 5% of the originals’ bytes, none broken', async () => {
    const originals = uploaded.reduce((sum, u) => sum + u.byteSize, 0);
    expect(uploaded.every((u) => u.width === 2400 && u.height === 1600)).toBe(true);
    expect(originals / COUNT).toBeGreaterThan(400_000); // really photo-sized
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const responses = recordImageResponses(page, gateway.url);
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction((n) => document.querySelectorAll('.smart-image').length === n, COUNT);
    await scrollThrough(page);
    await screenshot(page, 'variants-gallery');

    const tiles = await page.$$eval('.card .smart-image img', (imgs) =>
      (imgs as HTMLImageElement[]).map((img) => ({
        srcset: img.getAttribute('srcset'),
        sizes: img.getAttribute('sizes'),
        currentSrc: img.currentSrc,
        complete: img.complete,
        naturalWidth: img.naturalWidth,
      })),
    );
    expect(tiles).toHaveLength(COUNT);
    for (const tile of tiles) {
      expect(tile.srcset).toMatch(/ 320w, .+ 640w$/);
      expect(tile.sizes).toBeTruthy();
      expect(tile.currentSrc).toMatch(THUMB); // the browser picked a thumbnail, not the original
      expect(tile.complete).toBe(true);
      expect(tile.naturalWidth).toBeGreaterThan(0);
    }
    const states = await imageStates(page);
    expect(states.every((s) => s.state === 'loaded' && s.source === 'signed')).toBe(true);

    const got = await responses.done();
    expect(got.length).toBeGreaterThanOrEqual(COUNT);
    for (const r of got) {
      expect(r.status, r.url).toBe(200);
      expect(r.type, r.url).toBe('image/webp');
      expect(r.url).toMatch(THUMB);
    }
    const bytes = got.reduce((sum, r) => sum + r.bytes, 0);
    expect(bytes).toBeLessThanOrEqual(originals * 0.05);
    await page.close();
  });

  it('with the bucket and the proxy blocked, every tile still paints its placeholder', async () => {
    // Tall enough for all 24 (square) tiles at once: each one is on screen and tries to load.
    const page = await browser.newPage({ viewport: { width: 1280, height: 2800 } });
    await page.route('**/local-bucket/**', (route) => route.abort());
    await page.route('**/proxy/**', (route) => route.abort());
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction((n) => document.querySelectorAll('.smart-image').length === n, COUNT);
    // Retries with backoff, then the proxy, then the error state: wait for it on every tile.
    await page.waitForFunction(
      (n) =>
        [...document.querySelectorAll<HTMLElement>('.smart-image')].filter(
          (el) => el.dataset['state'] === 'error',
        ).length === n,
      COUNT,
      { timeout: 60_000, polling: 200 },
    );
    await screenshot(page, 'variants-blocked');
    const tiles = await page.$$('.card .smart-image');
    expect(tiles).toHaveLength(COUNT);
    for (const tile of tiles) {
      expect(await tile.getAttribute('data-placeholder')).toBe('thumbhash');
      const box = await tile.boundingBox();
      expect(box && box.width > 100 && box.height > 60).toBe(true);
      // The top quarter of the tile, above the centred error message: the placeholder alone.
      const png = await page.screenshot({
        clip: { x: box!.x + 4, y: box!.y + 4, width: box!.width - 8, height: box!.height / 4 },
      });
      const { channels } = await sharp(png).stats();
      const spread = Math.max(...channels.slice(0, 3).map((c) => c.max - c.min));
      expect(spread, 'a uniform tile: no placeholder painted').toBeGreaterThan(12);
    }
    await page.close();
  });

  it('a tile opens the detail view on the medium preset; ← → move, Esc closes, delete asks first', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const responses = recordImageResponses(page, gateway.url);
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction((n) => document.querySelectorAll('.smart-image').length === n, COUNT);
    await waitForVisibleLoaded(page);
    const ids = await page.$$eval('.card .smart-image', (els) =>
      els.map((el) => (el as HTMLElement).dataset['imageId']),
    );
    const detailImage = '[data-testid=image-detail] .smart-image';
    const detailLoaded = () =>
      page.waitForFunction(
        (sel) => {
          const el = document.querySelector<HTMLElement>(sel);
          const img = el?.querySelector('img');
          return el?.dataset['state'] === 'loaded' && img?.complete === true && img.naturalWidth > 0;
        },
        detailImage,
        { timeout: 30_000 },
      );

    await page.locator('.card__media').first().click();
    await detailLoaded();
    expect(await page.$eval(detailImage, (el) => (el as HTMLElement).dataset['imageId'])).toBe(ids[0]);
    expect(new URL(page.url()).hash).toBe(`#/gallery/${ids[0]}`);
    const shown = await page.$eval(`${detailImage} img`, (img) => ({
      srcset: img.getAttribute('srcset'),
      currentSrc: (img as HTMLImageElement).currentSrc,
    }));
    expect(shown.srcset).toMatch(/ 1280w/);
    expect(shown.currentSrc).toMatch(MEDIUM);
    // medium keeps 3:2 inside 1280×1280. The file's own width: an <img> with a srcset scales its
    // naturalWidth by the density its `sizes` gives the chosen entry.
    const fileWidth = await page.evaluate(async (src) => {
      const probe = new Image();
      probe.src = src;
      await probe.decode();
      return probe.naturalWidth;
    }, shown.currentSrc);
    expect(fileWidth).toBe(1280);
    const medium = (await responses.done()).find((r) => r.url === shown.currentSrc);
    expect(medium?.status).toBe(200);
    expect(medium?.type).toBe('image/webp');
    const original = await page.getAttribute('[data-testid=original-link]', 'href');
    expect(original).not.toMatch(/[?&]v=/); // the original, no variant
    await screenshot(page, 'variants-detail');

    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(
      ([sel, id]) => document.querySelector<HTMLElement>(sel!)?.dataset['imageId'] === id,
      [detailImage, ids[1]] as const,
    );
    await detailLoaded();
    await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(
      ([sel, id]) => document.querySelector<HTMLElement>(sel!)?.dataset['imageId'] === id,
      [detailImage, ids[0]] as const,
    );
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });

    // Delete from the detail view: refused once (nothing happens), then accepted.
    await page.locator('.card__media').nth(1).click();
    await detailLoaded();
    const answers = [false, true];
    const asked: string[] = [];
    page.on('dialog', (dialog) => {
      asked.push(dialog.message());
      void (answers.shift() ? dialog.accept() : dialog.dismiss());
    });
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    expect(asked).toHaveLength(1);
    expect(await page.$$eval('.card', (els) => els.length)).toBe(COUNT);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForFunction((n) => document.querySelectorAll('.card').length === n, COUNT - 1);
    expect(asked).toHaveLength(2);
    // The detail view moves on to the next image.
    await page.waitForFunction(
      ([sel, id]) => document.querySelector<HTMLElement>(sel!)?.dataset['imageId'] === id,
      [detailImage, ids[2]] as const,
    );
    const left = await gateway.graphql<{ images: { totalCount: number } }>(
      '{ images(first: 1) { totalCount } }',
    );
    expect(left.images.totalCount).toBe(COUNT - 1);
    await page.close();
  });
});
