import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, recordCspViolations, screenshot, waitForVisibleLoaded } from './helpers/browser';
import { Gateway } from './helpers/gateway';

interface Seeded {
  id: string;
  width: number;
  height: number;
}

const DETAIL_IMAGE = '[data-testid=image-detail] .smart-image';

/** Resolves once the detail view shows `id`'s picture, loaded and faded in. */
async function detailLoaded(page: Page, id: string): Promise<void> {
  await page.waitForFunction(
    ([sel, want]) => {
      const el = document.querySelector<HTMLElement>(sel!);
      const img = el?.querySelector('img');
      return (
        el?.dataset['imageId'] === want &&
        el.dataset['state'] === 'loaded' &&
        img?.complete === true &&
        img.naturalWidth > 0
      );
    },
    [DETAIL_IMAGE, id] as const,
    { timeout: 30_000 },
  );
  // The fade-in over: the picture fully opaque, as the pixel checks below want it.
  await page.waitForFunction(
    (sel) => {
      const img = document.querySelector(`${sel} img`);
      return img !== null && getComputedStyle(img).opacity === '1';
    },
    DETAIL_IMAGE,
    { timeout: 10_000 },
  );
}

/**
 * Where the picture is drawn: `object-fit` places it inside the <img>'s box at its natural ratio
 * (contain: whole, centred; cover: filling the box, the overflow cut off). Returns that rectangle,
 * the part of it on screen (inside the dialog's picture area), and the fit.
 */
function drawn(page: Page) {
  return page.$eval(`${DETAIL_IMAGE} img`, (el) => {
    const img = el as HTMLImageElement;
    const box = img.getBoundingClientRect();
    const area = img.closest('.detail__media')!.getBoundingClientRect();
    const fit = getComputedStyle(img).objectFit;
    const ratio = img.naturalWidth / img.naturalHeight;
    const scale =
      fit === 'contain'
        ? Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight)
        : Math.max(box.width / img.naturalWidth, box.height / img.naturalHeight);
    const w = img.naturalWidth * scale;
    const h = img.naturalHeight * scale;
    const left = box.left + (box.width - w) / 2;
    const top = box.top + (box.height - h) / 2;
    const visibleW = Math.min(left + w, area.right, innerWidth) - Math.max(left, area.left, 0);
    const visibleH = Math.min(top + h, area.bottom, innerHeight) - Math.max(top, area.top, 0);
    return {
      fit,
      ratio,
      picture: { left, top, width: w, height: h },
      area: { left: area.left, top: area.top, width: area.width, height: area.height },
      visible: (Math.max(0, visibleW) * Math.max(0, visibleH)) / (w * h),
    };
  });
}

/** The largest difference between the brightest and darkest pixel of a channel, in a screen region. */
async function spread(page: Page, clip: { x: number; y: number; width: number; height: number }) {
  const png = await page.screenshot({ clip });
  const { channels } = await sharp(png).stats();
  return Math.max(...channels.slice(0, 3).map((c) => c.max - c.min));
}

/** What has keyboard focus: its accessible label or text, and whether it is inside the dialog. */
const focused = (page: Page) =>
  page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    return {
      label: el?.getAttribute('aria-label') ?? el?.textContent?.trim() ?? '',
      inDialog: el?.closest('[role=dialog]') !== null,
      isDialog: el?.getAttribute('role') === 'dialog',
      href: el?.getAttribute('href') ?? null,
    };
  });

describe('the detail view: the whole photo at any width, a modal for the keyboard', () => {
  let gateway: Gateway;
  let browser: Browser;
  let images: Seeded[] = [];

  beforeAll(async () => {
    // The eight demo scenes: 2400×1600 landscapes and 1600×2400 portraits.
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: '8' });
    browser = await launchChromium();
    const data = await gateway.graphql<{ images: { edges: { node: Seeded }[] } }>(
      '{ images(first: 8) { edges { node { id width height } } } }',
    );
    images = data.images.edges.map((e) => e.node);
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('shows a landscape and a portrait photo whole, letterboxed, at 375 px and at 1440 px', async () => {
    const landscape = images.findIndex((i) => i.width > i.height);
    const portrait = images.findIndex((i) => i.height > i.width);
    expect(landscape).toBeGreaterThanOrEqual(0);
    expect(portrait).toBeGreaterThanOrEqual(0);

    for (const viewport of [
      { width: 375, height: 812 },
      { width: 1440, height: 900 },
    ]) {
      const page = await browser.newPage({ viewport });
      const refused = recordCspViolations(page);
      await page.goto(`${gateway.url}/#/gallery`);
      await page.waitForFunction(() => document.querySelectorAll('.card .smart-image').length === 8);
      await waitForVisibleLoaded(page);
      for (const index of [landscape, portrait]) {
        const image = images[index]!;
        const what = `${viewport.width} px, ${image.width}×${image.height}`;
        await page.locator('.card__open').nth(index).click();
        await detailLoaded(page, image.id);
        const shot = await drawn(page);
        expect(shot.fit, what).toBe('contain');
        // The variant's ratio is the original's, but for rounding (375 px wide: 375×249).
        expect(Math.abs(shot.ratio / (image.width / image.height) - 1), what).toBeLessThan(0.01);
        // All of the picture is on screen: nothing cut by the box, the dialog or the viewport.
        expect(shot.visible, what).toBeGreaterThan(0.995);
        // And it is as large as it can be: it spans the picture area's width or its height.
        const fills = Math.max(shot.picture.width / shot.area.width, shot.picture.height / shot.area.height);
        expect(fills, what).toBeGreaterThan(0.99);

        if (viewport.width === 375) {
          // Letterboxed: above the picture the area shows its plain background, not a cropped
          // photo and not strips of the blurred placeholder.
          const band = shot.picture.top - shot.area.top;
          expect(band, what).toBeGreaterThan(20);
          const above = { x: 8, y: shot.area.top + 2, width: viewport.width - 16, height: band - 4 };
          expect(await spread(page, above), what).toBeLessThanOrEqual(6);
          const inside = {
            x: shot.picture.left + 8,
            y: shot.picture.top + 8,
            width: shot.picture.width - 16,
            height: shot.picture.height - 16,
          };
          expect(await spread(page, inside), what).toBeGreaterThan(30);
        }
        await screenshot(
          page,
          `detail-${viewport.width}-${image.width > image.height ? 'landscape' : 'portrait'}`,
        );
        await page.keyboard.press('Escape');
        await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
      }
      // The detail view (full-size images, srcset, placeholders) runs under the page's CSP.
      expect(refused).toEqual([]);
      await page.close();
    }
  });

  it('keeps keyboard focus inside while open (Tab and Shift+Tab wrap), and gives it back on close', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 812 } });
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.card .smart-image').length === 8);
    // Opened from the keyboard: the second card, so that both ← and → are enabled.
    const card = page.locator('.card__open').nth(1);
    await card.focus();
    const cardHref = await card.getAttribute('href');
    await page.keyboard.press('Enter');
    await detailLoaded(page, images[1]!.id);
    expect((await focused(page)).isDialog).toBe(true);

    // The dialog's controls in order, then Tab from the last one comes back to the first.
    const order = ['Previous image', 'Next image', 'Original', 'Delete', 'Close'];
    for (const label of [...order, ...order]) {
      await page.keyboard.press('Tab');
      const now = await focused(page);
      expect(now.inDialog, `Tab to ${label}`).toBe(true);
      expect(now.label).toBe(label);
    }
    // Shift+Tab from the first control wraps to the last.
    await page.keyboard.press('Tab'); // Previous image
    await page.keyboard.press('Shift+Tab');
    expect((await focused(page)).label).toBe('Close');
    await screenshot(page, 'detail-focus-375');

    // Escape closes, and focus is back on the card that opened the view.
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
    expect((await focused(page)).href).toBe(cardHref);

    // The same after moving through the gallery with → and closing with the Close button.
    await page.keyboard.press('Enter');
    await detailLoaded(page, images[1]!.id);
    await page.keyboard.press('ArrowRight');
    await detailLoaded(page, images[2]!.id);
    await page.keyboard.press('Shift+Tab'); // from the dialog itself: the last control, Close
    expect((await focused(page)).label).toBe('Close');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
    expect((await focused(page)).href).toBe(cardHref);
    await page.close();
  });

  it('opened by its link, it keeps focus inside when → turns disabled, and on close gives it to the card of the image shown last', async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const image = images[3]!;
    await page.goto(`${gateway.url}/#/gallery/${image.id}`);
    await detailLoaded(page, image.id);
    // Named by its place in the gallery, which tells it from the demo photos like it.
    expect(await page.getByRole('dialog').getAttribute('aria-label')).toMatch(/^Image 4 of 8: JPEG image, /);
    // → pressed (Enter on the focused button) through to the last image: the button turns
    // disabled under focus, and the dialog takes focus instead of the page's body.
    await page.getByRole('button', { name: 'Next image' }).focus();
    for (let i = 4; i < 8; i++) {
      await page.keyboard.press('Enter');
      await detailLoaded(page, images[i]!.id);
    }
    expect(await page.getByRole('button', { name: 'Next image' }).isDisabled()).toBe(true);
    expect((await focused(page)).isDialog).toBe(true);
    await page.getByRole('button', { name: 'Close' }).click();
    await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
    expect((await focused(page)).href).toBe(`#/gallery/${images[7]!.id}`);
    await page.close();
  });
});
