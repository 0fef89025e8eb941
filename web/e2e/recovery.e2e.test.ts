import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  imageStates,
  launchChromium,
  recordGraphql,
  screenshot,
  scrollThrough,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';

const SECRET_A = 'e2e-signing-secret-one-0123456789';
const SECRET_B = 'e2e-signing-secret-two-0123456789';

async function imageIds(gateway: Gateway): Promise<string[]> {
  const data = await gateway.graphql<{ images: { edges: { node: { id: string } }[] } }>(
    '{ images(first: 100) { edges { node { id } } } }',
  );
  return data.images.edges.map((e) => e.node.id);
}

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

describe('recovery without a reload', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '40',
      LOCAL_SIGNING_SECRET: SECRET_A,
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('URLs made invalid behind its back (gateway restarted with a new key, cache gone) recover through refreshSignedUrls', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = await countErrors(page);
    const graphql = recordGraphql(page);
    await page.goto(`${gateway.url}/?first=40#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 40);
    await waitForVisibleLoaded(page);
    await page.evaluate(() => {
      (window as unknown as { __sameDocument: boolean }).__sameDocument = true;
    });
    const before = await imageStates(page);
    const unseen = before.filter((i) => i.src === null);
    expect(unseen.length).toBeGreaterThan(20);
    const pageUrls = new Map<string, string>();
    const answer = (await graphql.find((c) => c.operationName === 'GalleryPage')!.response) as {
      data: { images: { edges: { node: { id: string; thumb: { url: string } } }[] } };
    };
    // Tiles show the thumb preset: its URLs are the ones the page holds and refetches.
    for (const e of answer.data.images.edges) pageUrls.set(e.node.id, e.node.thumb.url);

    // Behind the app's back: a new signing key, and the restart empties the URL cache. Every
    // URL the page holds is now refused by the bucket, though none has reached its expiry.
    // Calls are counted from before the restart: the stream's reconnect (1, 3, 7, 15 s after the
    // drop) can reach the new gateway, and refetch, before restart() has seen /healthz answer.
    const callsBefore = graphql.length;
    await gateway.restart({ LOCAL_SIGNING_SECRET: SECRET_B });
    const stale = pageUrls.get(unseen[0]!.id)!;
    const refused = await page.evaluate(async (u) => (await fetch(u, { method: 'HEAD' })).status, stale);
    expect(refused).toBe(403);

    // The dropped subscription comes back and refetches the URLs of the images on screen (the
    // attempts made while the gateway was down failed and have no answer).
    type Refetched = { data: { imagesByIds: ({ id: string; signedUrl: { url: string } } | null)[] } };
    const answered = async () => {
      for (const c of graphql.slice(callsBefore)) {
        if (c.operationName !== 'ImageVariantUrls') continue;
        const body = (await c.response) as Refetched | undefined;
        if (body?.data) return body;
      }
      return undefined;
    };
    await page.waitForSelector('.link-state[data-state=live]', { timeout: 60_000 });
    await expect.poll(async () => (await answered()) !== undefined, { timeout: 30_000 }).toBe(true);
    // ...which are signed with the new key and kept for the next load of each image. The
    // pictures already on screen are not downloaded again: they keep their (now refused) src
    // and stay whole, since nothing needs fetching.
    const refetched = (await answered())!;
    const shown = before.filter((i) => i.src !== null);
    expect(refetched.data.imagesByIds.map((r) => r?.id).sort()).toEqual(shown.map((i) => i.id).sort());
    for (const row of refetched.data.imagesByIds) {
      expect(row!.signedUrl.url, row!.id).not.toBe(pageUrls.get(row!.id));
      const status = await page.evaluate(
        async (u) => (await fetch(u, { method: 'HEAD' })).status,
        row!.signedUrl.url,
      );
      expect(status, row!.id).toBe(200);
    }
    for (const image of (await imageStates(page)).filter((i) => i.src !== null)) {
      expect(image.src, image.id).toBe(pageUrls.get(image.id));
      expect(image.state, image.id).toBe('loaded');
      expect(image.naturalWidth, image.id).toBeGreaterThan(0);
    }

    // The rest were never shown: scrolling to them meets the refused URLs, which recover.
    await scrollThrough(page);
    const after = await imageStates(page);
    expect(after).toHaveLength(40);
    for (const image of after) {
      expect(image.state, image.id).toBe('loaded');
      expect(image.naturalWidth, image.id).toBeGreaterThan(0);
      expect(image.source, image.id).toBe('signed'); // recovered by refresh, not the proxy
    }
    for (const image of unseen) {
      const now = after.find((i) => i.id === image.id)!;
      expect(now.src, image.id).not.toBe(pageUrls.get(image.id));
    }
    const refreshes = graphql.filter((c) => c.operationName === 'RefreshSignedUrls');
    expect(refreshes.length).toBeGreaterThan(0);
    // Failures close in time share one mutation.
    const refreshedIds = refreshes.flatMap(
      (c) => (c.request.postDataJSON() as { variables: { ids: string[] } }).variables.ids,
    );
    expect(refreshes.length).toBeLessThan(refreshedIds.length);
    expect(await errors()).toBeGreaterThan(0);
    expect(
      await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument),
    ).toBe(true);
    await page.close();
  });

  it('falls back to the proxy link when the bucket cannot be reached for an image', async () => {
    const [target] = await imageIds(gateway);
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const graphql = recordGraphql(page);
    // This image's bucket URLs never connect, whatever is signed for them.
    await page.route(
      (url) => url.pathname.startsWith('/local-bucket/') && url.pathname.includes(target!),
      (route) => route.abort('connectionrefused'),
    );
    await page.goto(`${gateway.url}/#/gallery`);
    const el = page.locator(`.smart-image[data-image-id="${target}"]`);
    await el.and(page.locator('[data-state=loaded]')).waitFor({ timeout: 30_000 });
    expect(await el.getAttribute('data-source')).toBe('proxy');
    const src = await el.locator('img').getAttribute('src');
    expect(new URL(src!).pathname).toBe(`/proxy/${target}`);
    // The proxy link of the tile's preset: the thumbnail (320×320 cover), not the original.
    expect(new URL(src!).searchParams.toString()).toContain('thumb');
    expect(await el.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(320);
    // Three refreshes were tried before the fallback, with backoff between them.
    const tries = graphql.filter(
      (c) =>
        c.operationName === 'RefreshSignedUrls' &&
        (c.request.postDataJSON() as { variables: { ids: string[] } }).variables.ids.includes(target!),
    );
    expect(tries).toHaveLength(3);
    await page.close();
  });

  it('ends in an error state whose Retry button, used from the keyboard, recovers once the network is back', async () => {
    const [target] = await imageIds(gateway);
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const blocked = (url: URL) =>
      (url.pathname.startsWith('/local-bucket/') && url.pathname.includes(target!)) ||
      url.pathname === `/proxy/${target}`;
    await page.route(blocked, (route) => route.abort('connectionrefused'));
    await page.goto(`${gateway.url}/#/gallery`);
    const el = page.locator(`.smart-image[data-image-id="${target}"]`);
    await el.and(page.locator('[data-state=error]')).waitFor({ timeout: 30_000 });
    await waitForVisibleLoaded(page, 30_000, target); // the others settle (this one cannot)
    await screenshot(page, 'gallery-error-state');

    await page.unroute(blocked);
    // Reach the button with Tab from the image before it, as a keyboard user would.
    const retry = el.getByRole('button', { name: /^Retry loading/ });
    await page.locator('.tabs__link').last().focus();
    for (let i = 0; i < 20; i++) {
      if (await retry.evaluate((b) => b === document.activeElement)) break;
      await page.keyboard.press('Tab');
    }
    expect(await retry.evaluate((b) => b === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await el.and(page.locator('[data-state=loaded]')).waitFor({ timeout: 30_000 });
    // Recovered: the picture is whole. Usually through its signed thumb URL; when the gallery's
    // first thumbnails are still being rendered (the local bucket's bounded queue answers 503 to a
    // burst) the retries can run out and the tile recovers through its proxy link instead — both
    // are the same thumb bytes (seen once in 2 runs on 2026-11-30; noted in the issue).
    expect(['signed', 'proxy']).toContain(await el.getAttribute('data-source'));
    expect(await el.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
    // Focus stays on the image, not thrown back to the top of the page.
    expect(await el.evaluate((e) => e === document.activeElement)).toBe(true);
    await page.close();
  });
});
