import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  imageStates,
  launchChromium,
  recordCspViolations,
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
    const refused = recordCspViolations(page);
    const res = await page.goto(`${gateway.url}/?first=100#/gallery`);
    // The app runs whole under the policy its page is sent with (static-app.ts, APP_CSP).
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
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
    expect(refused).toEqual([]);
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

  it('at 375 px: the logo is named, every card and button has a name of its own, captions read whole', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 812 } });
    // A clock the test moves: a caption reading "16 minutes ago" is longer than "just now".
    await page.clock.install();
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.card .smart-image').length >= 24);
    await waitForVisibleLoaded(page);
    // No page in flight (the next one may already have come): the cards stay as they are.
    await page.getByRole('button', { name: 'Load more' }).waitFor();
    const count = await page.locator('.card').count();

    // The names Chromium gives assistive technology (its accessibility tree, not our attributes).
    const cdp = await page.context().newCDPSession(page);
    const axNames = async (role: string) => {
      const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as {
        nodes: { ignored: boolean; role?: { value: string }; name?: { value: string } }[];
      };
      return nodes.filter((n) => !n.ignored && n.role?.value === role).map((n) => n.name?.value ?? '');
    };
    // The logo link's text is not shown at this width; it is still the link's name.
    const links = await axNames('link');
    expect(links).toContain('Signet');
    const logo = page.getByRole('link', { name: 'Signet', exact: true });
    expect(await logo.count()).toBe(1);
    const text = await logo.locator('.brand__name').boundingBox();
    expect(text!.width * text!.height).toBeLessThanOrEqual(1); // the visually-hidden 1 px box

    // Cards of 100 look-alike demo photos: each link, button and picture says which one it is.
    const openers = links.filter((n) => n.startsWith('Open '));
    expect(openers).toHaveLength(count);
    expect(openers[2]).toMatch(/^Open image 3 of 100: JPEG image, \d+ × \d+, added /);
    const buttons = await axNames('button');
    expect(buttons.filter((n) => n.startsWith('Delete '))).toHaveLength(count);
    expect(buttons.filter((n) => n.startsWith('Make public: '))).toHaveLength(count);
    expect(buttons).toContain('Delete image 3 of 100');
    expect(buttons).toContain('Make public: image 3 of 100');
    for (const names of [links, buttons, await axNames('image')]) {
      const repeated = names.filter((n, i) => n !== '' && names.indexOf(n) !== i);
      expect(repeated).toEqual([]);
    }
    expect(await page.locator('.card').first().getAttribute('aria-setsize')).toBe('100');

    // Captions: no fact cut short ("JPEG · 2400×…", "6 minutes ago · …"), "Make public" on one line.
    const caption = () =>
      page.$$eval('.card__caption', (els) =>
        els.map((el) => ({
          // Cut: ellipsed, or its text (not the hidden "·" before it) outside the caption's padding.
          cut: [...el.querySelectorAll<HTMLElement>('.facts > *')]
            .filter((f) => {
              const text = document.createRange();
              text.selectNodeContents(f);
              const r = text.getBoundingClientRect();
              const box = el.getBoundingClientRect();
              const pad = Number.parseFloat(getComputedStyle(el).paddingLeft);
              return (
                f.scrollWidth > f.clientWidth + 0.5 ||
                r.left < box.left + pad - 0.5 ||
                r.right > box.right - pad + 0.5
              );
            })
            .map((f) => f.textContent),
          title: el.querySelector('.card__title')?.textContent?.replace(/\s+/g, ' ').trim(),
          meta: el.querySelector('.card__meta')?.textContent?.replace(/\s+/g, ' ').trim(),
          toggleLines: el.querySelector('.card__toggle')?.getClientRects().length,
          toggleHeight: el.querySelector('.card__toggle')?.getBoundingClientRect().height ?? 0,
        })),
      );
    for (const age of ['just now', '16 minutes ago']) {
      if (age !== 'just now') await page.clock.fastForward('16:00');
      await page.waitForFunction(
        (want) => document.querySelector('.card__meta time')?.textContent === want,
        age,
      );
      const cards = await caption();
      expect(cards).toHaveLength(count);
      for (const card of cards) {
        expect(card.cut, `${card.title} / ${card.meta}`).toEqual([]);
        expect(card.title).toMatch(/^JPEG\d+×\d+$/); // the separator is drawn, not text
        expect(card.toggleLines).toBe(1);
        // One line of 0.75rem text, in a target 24 px tall (WCAG 2.5.8): not two lines' height.
        expect(card.toggleHeight).toBeGreaterThanOrEqual(24);
        expect(card.toggleHeight).toBeLessThan(30);
      }
      await screenshot(page, `gallery-375-${age.replace(/ /g, '-')}`);
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    expect(overflow).toBe(false);
    await page.close();
  });
});
