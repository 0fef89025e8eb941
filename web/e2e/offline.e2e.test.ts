import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageStates, launchChromium, recordGraphql, waitForVisibleLoaded } from './helpers/browser';
import { Gateway } from './helpers/gateway';

/** The tiles in the viewport, as imageStates sees them. */
async function onScreen(page: Page) {
  const height = await page.evaluate(() => window.innerHeight);
  return (await imageStates(page)).filter((i) => i.top < height && i.top > -200);
}

/**
 * A phone in a tunnel: the gallery scrolled while the browser is offline, longer than a URL's
 * step, then back online. Tiles that failed offline used to spend every try (and the proxy) on
 * a network that was not there, and stayed in their error state for good once it came back; the
 * next page that failed stayed failed too.
 */
describe('offline, then back online', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '60',
      // Steps of 15 s: URLs the page holds run out while it is offline.
      URL_TTL_SECONDS: '20',
      REFRESH_AHEAD_SECONDS: '5',
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('tiles and the next page that failed offline load by themselves once the connection is back', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const graphql = recordGraphql(page);
    await page.goto(`${gateway.url}/?first=12#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length >= 12);
    await waitForVisibleLoaded(page);
    await page.waitForSelector('.link-state[data-state=live]', { timeout: 20_000 });
    // The pages the first screen brought (the end of the list near): more are left to ask for.
    await page.waitForSelector('.gallery__more button:not([disabled])');
    const cards = () => page.evaluate(() => document.querySelectorAll('.smart-image').length);
    const before = await cards();
    expect(before).toBeLessThan(60);
    const loadedFirst = new Set((await onScreen(page)).map((i) => i.id));

    await context.setOffline(true);
    const offlineFrom = graphql.length;
    // To the end of the list: tiles never loaded come on screen, and the next page is asked for.
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.waitForSelector('.gallery__more .banner--error', { timeout: 10_000 });
    // Longer than the whole backoff (0.4 + 0.8 + 1.6 s) and a URL's step: an old tile had reached
    // the proxy and its error state by now.
    await page.waitForTimeout(16_000);
    const failed = (await onScreen(page)).filter((i) => !loadedFirst.has(i.id) && i.state !== 'loaded');
    expect(failed.length).toBeGreaterThan(0);
    for (const tile of failed) {
      expect(tile.state).toBe('error'); // its Retry button is there meanwhile
      expect(tile.source).toBe('signed'); // no try spent, no proxy: the network was away, not the URL
    }
    const offlineOps = graphql.slice(offlineFrom).map((c) => c.operationName);
    expect(offlineOps).not.toContain('RefreshSignedUrls');

    // The live-URL stream, dropped offline, is asked for again within seconds of the connection
    // coming back (useUrlRefresh.test.ts shows the `online` reconnect itself).
    const streamBack = page.waitForRequest(
      (r) => r.url().endsWith('/graphql') && (r.headers()['accept'] ?? '').includes('text/event-stream'),
      { timeout: 5_000 },
    );
    await context.setOffline(false);
    await streamBack;
    // No click: the failed page comes, and every tile on screen loads.
    await page.waitForFunction((n) => document.querySelectorAll('.smart-image').length > n, before, {
      timeout: 15_000,
    });
    expect(await page.locator('.gallery__more .banner--error').count()).toBe(0);
    await waitForVisibleLoaded(page, 20_000);
    const after = await onScreen(page);
    expect(after.filter((i) => i.source === 'proxy')).toEqual([]);
    await page.waitForSelector('.link-state[data-state=live]', { timeout: 10_000 });
    await context.close();
  });
});
