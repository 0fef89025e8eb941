import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  imageStates,
  launchChromium,
  recordGraphql,
  recordImageRequests,
  screenshot,
  scrollThrough,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';

interface PageAnswer {
  data: { images: { totalCount: number; edges: { node: { id: string; thumb: { url: string } } }[] } };
}

describe('gallery', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: '100' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('shows 100 images from one GraphQL request, fetching each only once it is on screen', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const graphql = recordGraphql(page);
    const fetched = recordImageRequests(page);
    await page.goto(`${gateway.url}/?first=100#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 100);
    await waitForVisibleLoaded(page);

    // Lazy: only the first screenful has asked for bytes; the rest have no src at all.
    const first = await imageStates(page);
    const onScreen = first.filter((i) => i.top < 900);
    const below = first.filter((i) => i.top >= 900);
    expect(onScreen.length).toBeGreaterThan(0);
    expect(below.length).toBeGreaterThan(50);
    expect(below.every((i) => i.src === null && i.state === 'placeholder')).toBe(true);
    expect(fetched.length).toBe(onScreen.length);
    await screenshot(page, 'gallery-desktop');

    await scrollThrough(page);
    const all = await imageStates(page);
    expect(all).toHaveLength(100);
    for (const image of all) {
      expect(image.state, image.id).toBe('loaded');
      expect(image.complete, image.id).toBe(true);
      expect(image.naturalWidth, image.id).toBeGreaterThan(0); // actually decoded
    }

    // One GraphQL request carried every URL; each image's bytes were fetched exactly once.
    const pages = graphql.filter((c) => c.operationName === 'GalleryPage');
    expect(pages).toHaveLength(1);
    const answer = (await pages[0]!.response) as PageAnswer;
    expect(answer.data.images.totalCount).toBe(100);
    // A tile shows the thumb preset: its src is the thumb's URL from the page.
    const urls = new Map(answer.data.images.edges.map((e) => [e.node.id, e.node.thumb.url]));
    expect(urls.size).toBe(100);
    for (const image of all) expect(image.src).toBe(urls.get(image.id));
    const urlCarrying = graphql.filter((c) =>
      ['GalleryPage', 'ImageUrls', 'ImageVariantUrls', 'RefreshSignedUrls'].includes(c.operationName ?? ''),
    );
    expect(urlCarrying).toHaveLength(1);
    expect(fetched).toHaveLength(100);
    expect(new Set(fetched).size).toBe(100);

    // The subscription follows the visible images through one stream at a time, not one per image.
    const streams = graphql.filter((c) => c.stream);
    expect(streams.length).toBeGreaterThan(0);
    expect(streams.length).toBeLessThan(40);
    await page.close();
  });

  it('shows each card’s visibility and toggles it through setImageVisibility', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const graphql = recordGraphql(page);
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForSelector('.smart-image');
    const badges = page.locator('[data-testid="visibility-badge"]');
    expect(await badges.count()).toBeGreaterThan(0);
    // Seeded images are private, like every upload that does not say otherwise.
    expect(new Set((await badges.allTextContents()).map((t) => t.trim()))).toEqual(new Set(['Private']));
    const toggle = page.locator('[data-testid="visibility-toggle"]').first();
    expect((await toggle.textContent())?.trim()).toBe('Make public');
    await toggle.click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="visibility-badge"]')?.textContent?.trim() === 'Public',
    );
    expect((await toggle.textContent())?.trim()).toBe('Make private');
    const call = graphql.find((c) => c.operationName === 'SetImageVisibility');
    const answer = (await call!.response) as {
      data: { setImageVisibility: { id: string; visibility: string } };
    };
    expect(answer.data.setImageVisibility.visibility).toBe('PUBLIC');
    await screenshot(page, 'gallery-visibility');

    // The server kept it: a fresh load shows the same badge, and toggling back works.
    await page.reload();
    await page.waitForSelector('.smart-image');
    expect((await badges.first().textContent())?.trim()).toBe('Public');
    await toggle.click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="visibility-badge"]')?.textContent?.trim() === 'Private',
    );
    await page.close();
  });

  it('keeps a usable layout on a narrow screen, with no layout shift while images load', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    await page.addInitScript(() => {
      const w = window as unknown as { __shift: number };
      w.__shift = 0;
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries() as (PerformanceEntry & { value: number })[])
          w.__shift += entry.value;
      }).observe({ type: 'layout-shift', buffered: true });
    });
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForSelector('.smart-image');
    await waitForVisibleLoaded(page);
    const columns = await page.$eval(
      '.grid',
      (el) => getComputedStyle(el).gridTemplateColumns.split(' ').length,
    );
    expect(columns).toBe(2);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    expect(overflow).toBe(false);
    const shift = await page.evaluate(() => (window as unknown as { __shift: number }).__shift);
    expect(shift).toBeLessThan(0.01);
    await screenshot(page, 'gallery-narrow');

    // Keyboard: the tabs are reachable and show where focus is.
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab'); // brand
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
    expect(focused).toBe('Gallery');
    await page.close();
  });
});
