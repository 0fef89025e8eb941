import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, recordGraphql, waitForVisibleLoaded } from './helpers/browser';
import { Gateway } from './helpers/gateway';

/**
 * What the gallery costs in bytes it need not fetch: no second page asked on open (the end of the
 * list is thousands of px below), and `<img sizes>` that say the width the picture is laid out at,
 * so the browser takes the srcset's entry for that width (not the 2× one).
 */

/** Demo photos (2400×1600 and 1600×2400, made by the gateway): two pages of 24 and a short third. */
const COUNT = 50;
const PAGE = 24;
/** The local driver names a variant in `v=`: `<w>x<h>-<fit>-<format>-<quality>`. */
const variant = (url: string) => new URL(url).searchParams.get('v');
/** `thumb` (320×320 cover): 320w at 1×, 640w at 2×. */
const THUMB_1X = '320x320-cover-webp-75';
const THUMB_2X = '640x640-cover-webp-75';
/** `medium` (1280×1280 inside) of a 1600×2400 photo: 853×1280 at 1×, the original's 1600×2400 at 2×. */
const MEDIUM_1X = '1280x1280-inside-webp-80';
const MEDIUM_2X_PORTRAIT = '1600x2400-inside-webp-80';

interface Viewport {
  width: number;
  height: number;
  dpr: number;
}
const DESKTOP: Viewport = { width: 1280, height: 800, dpr: 1 };
const PHONE: Viewport = { width: 360, height: 740, dpr: 2 };

async function open(browser: Browser, v: Viewport): Promise<{ context: BrowserContext; page: Page }> {
  const phone = v.width < 500;
  const context = await browser.newContext({
    viewport: { width: v.width, height: v.height },
    deviceScaleFactor: v.dpr,
    isMobile: phone,
    hasTouch: phone,
  });
  return { context, page: await context.newPage() };
}

/** Two animation frames: what a change brought is laid out, and the observers have reported. */
const settle = (page: Page) =>
  page.evaluate(
    () => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  );

/**
 * The width an `<img sizes>` says, in px, as this page evaluates it now: the value of its first
 * entry whose media condition matches (or that has none), laid out as a width.
 */
function declaredWidth(page: Page, sizes: string): Promise<number> {
  return page.evaluate((list) => {
    const entries: string[] = [];
    let depth = 0;
    let from = 0;
    for (let i = 0; i < list.length; i++) {
      const c = list[i];
      if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (c === ',' && depth === 0) {
        entries.push(list.slice(from, i).trim());
        from = i + 1;
      }
    }
    entries.push(list.slice(from).trim());
    for (const entry of entries) {
      const m = /^(\([^()]*\))\s+(.+)$/.exec(entry);
      if (m && !window.matchMedia(m[1]!).matches) continue;
      const probe = document.createElement('div');
      probe.style.cssText = `position:absolute;left:0;top:0;visibility:hidden;height:1px;width:${m ? m[2] : entry}`;
      document.body.append(probe);
      const width = probe.getBoundingClientRect().width;
      probe.remove();
      return width;
    }
    return Number.NaN;
  }, sizes);
}

describe('bytes: pages and srcset entries the gallery does not need', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    // The demo seed makes its photos with sharp at the first start: slow on a busy 2-core machine.
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: String(COUNT) }, 240_000);
    browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  for (const [name, v] of [
    ['a desktop (1280×800)', DESKTOP],
    ['a phone (360×740, DPR 2)', PHONE],
  ] as const) {
    it(`on ${name}: one page on open, the next ones as the end of the list comes near`, async () => {
      const { context, page } = await open(browser, v);
      const graphql = recordGraphql(page);
      const pages = () =>
        graphql
          .filter((c) => c.operationName === 'GalleryPage')
          .map(
            (c) => (c.request.postDataJSON() as { variables: { after?: string } }).variables.after ?? null,
          );
      await page.goto(`${gateway.url}/#/gallery`);
      await page.waitForFunction((n) => document.querySelectorAll('li.card').length >= n, PAGE);
      await waitForVisibleLoaded(page, 60_000);
      await settle(page);
      await page.waitForTimeout(1000); // a second page used to be asked right after the first came
      await settle(page);
      const where = await page.evaluate(() => ({
        sentinel: document.querySelector('.gallery__more')!.getBoundingClientRect().top,
        innerHeight: window.innerHeight,
        cards: document.querySelectorAll('li.card').length,
      }));
      expect(where.sentinel, 'the end of the list is far below the screen').toBeGreaterThan(
        where.innerHeight + 400,
      );
      expect(pages()).toEqual([null]); // the first page, nothing after it
      expect(where.cards).toBe(PAGE);

      // Scrolled to the bottom, again as the pages come: each next page once, up to the end.
      const deadline = Date.now() + 90_000;
      while (!(await page.$('.gallery__end'))) {
        expect(Date.now(), `the end of the list (pages asked: ${pages().length})`).toBeLessThan(deadline);
        await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
        await page.waitForTimeout(250);
      }
      const asked = pages();
      expect(asked).toHaveLength(Math.ceil(COUNT / PAGE));
      expect(asked[0]).toBeNull();
      expect(new Set(asked).size).toBe(asked.length); // no page asked twice
      expect(await page.$$eval('li.card', (cards) => cards.length)).toBe(COUNT);
      expect((await page.textContent('.gallery__end'))?.trim()).toBe(`That’s all ${COUNT}.`);
      await context.close();
    });
  }

  it('tiles: sizes says each tile’s laid-out width at every breakpoint of the grid', async () => {
    const { context, page } = await open(browser, { width: 1280, height: 900, dpr: 1 });
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForSelector('li.card .smart-image img[sizes]');
    const sizes = (await page.getAttribute('li.card .smart-image img', 'sizes')) ?? '';
    // Each side of every step: the phone layout (640), two, three and four columns, the page's max.
    for (const width of [
      360, 412, 640, 641, 700, 783, 784, 790, 1000, 1035, 1036, 1100, 1239, 1240, 1280, 1600,
    ]) {
      await page.setViewportSize({ width, height: 900 });
      await settle(page);
      const laidOut = await page.$eval('li.card .smart-image', (el) => el.getBoundingClientRect().width);
      const said = await declaredWidth(page, sizes);
      expect(
        Math.abs(said - laidOut),
        `at ${width} px: sizes says ${said}, the tile is ${laidOut}`,
      ).toBeLessThanOrEqual(1);
    }
    await context.close();
  });

  for (const [v, want] of [
    [{ width: 700, height: 900, dpr: 1 }, THUMB_1X], // 314 px tiles: 320w (640w before)
    [{ width: 790, height: 900, dpr: 1 }, THUMB_1X], // 232 px tiles, three columns
    [PHONE, THUMB_1X], // 156 px tiles at 2×: 312 px
    [{ width: 1280, height: 800, dpr: 2 }, THUMB_2X], // 281 px at 2×: 562 px, the 2× entry still
  ] as const) {
    it(`tiles at ${v.width}×${v.height}, DPR ${v.dpr}: the browser takes ${want}`, async () => {
      const { context, page } = await open(browser, v);
      await page.goto(`${gateway.url}/#/gallery`);
      await page.waitForSelector('li.card .smart-image');
      await waitForVisibleLoaded(page, 60_000);
      const picked = await page.$$eval('li.card .smart-image', (els) =>
        els
          .filter((el) => {
            const r = el.getBoundingClientRect();
            return r.bottom > 0 && r.top < window.innerHeight;
          })
          .map((el) => el.querySelector('img')?.currentSrc ?? ''),
      );
      expect(picked.length).toBeGreaterThan(0);
      expect(picked.map(variant)).toEqual(picked.map(() => want));
      await context.close();
    });
  }

  describe('the detail view', () => {
    let portrait = '';
    let landscape = '';
    beforeAll(async () => {
      const data = await gateway.graphql<{
        images: { edges: { node: { id: string; width: number; height: number } }[] };
      }>(`{ images(first: ${PAGE}) { edges { node { id width height } } } }`);
      const nodes = data.images.edges.map((e) => e.node);
      portrait = nodes.find((n) => n.width === 1600 && n.height === 2400)?.id ?? '';
      landscape = nodes.find((n) => n.width === 2400 && n.height === 1600)?.id ?? '';
      expect(portrait && landscape).toBeTruthy();
    });

    async function openDetail(v: Viewport, id: string) {
      const { context, page } = await open(browser, v);
      await page.goto(`${gateway.url}/#/gallery/${id}`);
      await page.waitForFunction(
        () => {
          const el = document.querySelector<HTMLElement>('[data-testid=image-detail] .smart-image');
          const img = el?.querySelector('img');
          return el?.dataset['state'] === 'loaded' && img?.complete === true && img.naturalWidth > 0;
        },
        null,
        { timeout: 60_000 },
      );
      await settle(page);
      return { context, page };
    }

    for (const [v, want] of [
      [DESKTOP, MEDIUM_1X], // 455 px wide: 853w (the 1600w one before, 10× the bytes)
      [{ ...DESKTOP, dpr: 1.5 }, MEDIUM_1X], // 683 device px: 853w
      [{ ...DESKTOP, dpr: 2 }, MEDIUM_2X_PORTRAIT], // 910 device px: 1600w
    ] as const) {
      it(`a portrait photo at ${v.width}×${v.height}, DPR ${v.dpr}: the browser takes ${want}`, async () => {
        const { context, page } = await openDetail(v, portrait);
        const src = await page.$eval(
          '[data-testid=image-detail] .smart-image img',
          (img) => (img as HTMLImageElement).currentSrc,
        );
        expect(variant(src)).toBe(want);
        await context.close();
      });
    }

    it('sizes says the width the picture is shown at (contained in its box), portrait or landscape', async () => {
      for (const id of [portrait, landscape]) {
        for (const v of [
          DESKTOP,
          { width: 1600, height: 1000, dpr: 1 },
          { width: 700, height: 900, dpr: 1 },
          PHONE,
        ]) {
          const { context, page } = await openDetail(v, id);
          const shown = await page.$eval('[data-testid=image-detail] .smart-image img', (img) => {
            const box = img.getBoundingClientRect();
            const el = img as HTMLImageElement;
            const ratio = Number(el.getAttribute('width')) / Number(el.getAttribute('height'));
            return { width: Math.min(box.width, box.height * ratio), sizes: el.sizes };
          });
          const said = await declaredWidth(page, shown.sizes);
          // Within a few px: the bar is measured, rounded; a larger say only at the step's edge.
          expect(
            Math.abs(said - shown.width),
            `${id} at ${v.width}×${v.height}: sizes ${said}, shown ${shown.width}`,
          ).toBeLessThanOrEqual(3);
          await context.close();
        }
      }
    });
  });
});
