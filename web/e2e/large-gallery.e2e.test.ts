import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, recordGraphql } from './helpers/browser';
import { bulkSeed } from './helpers/bulk-seed';
import { Gateway } from './helpers/gateway';

/** Images of the demo viewer: one seeded by the gateway, the rest imported (bulkSeed). */
const COUNT = 3000;

/** The mounted cards: each one's image id (from its link) and place in the whole list. */
function mountedCards(page: Page): Promise<{ id: string; pos: number }[]> {
  return page.$$eval('[data-testid="gallery-grid"] > li.card', (cards) =>
    cards.map((li) => ({
      id: (li.querySelector('.card__open')?.getAttribute('href') ?? '').replace('#/gallery/', ''),
      pos: Number(li.getAttribute('aria-posinset')),
    })),
  );
}

/** Lets the page render what a scroll (or a key) changed: two animation frames. */
const settle = (page: Page) =>
  page.evaluate(
    () => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
  );

describe('a large gallery (windowed: only the cards near the viewport are mounted)', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: '1' });
    await bulkSeed(gateway, COUNT - 1);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('reaches every image once while the mounted cards stay few; ← → and delete work across the window', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (d) => void d.accept()); // the delete's confirm()
    const graphql = recordGraphql(page);
    await page.goto(`${gateway.url}/?first=100#/gallery`);
    await page.waitForSelector('li.card .smart-image');
    expect((await page.textContent('.view__subtitle'))?.trim()).toMatch(/^3,000 images/);

    // Scroll a screen at a time to the end: pages load as the end comes near.
    const seen = new Map<number, string>();
    /** The most cards mounted at once, once more than 200 are loaded (the grid then windows). */
    let mostMounted = 0;
    for (let step = 0; step < 5000; step++) {
      await settle(page);
      const cards = await mountedCards(page);
      if (seen.size > 300) mostMounted = Math.max(mostMounted, cards.length);
      for (const { id, pos } of cards) {
        const had = seen.get(pos);
        if (had !== undefined) expect(had, `image ${pos}`).toBe(id);
        seen.set(pos, id);
      }
      const atEnd = await page.evaluate(() => {
        const end = document.documentElement.scrollHeight - window.innerHeight;
        if (window.scrollY < end - 1) {
          window.scrollBy(0, window.innerHeight);
          return false;
        }
        return document.querySelector('.gallery__end') !== null;
      });
      if (atEnd) break;
      if (step % 10 === 9) await page.waitForTimeout(20); // a page on its way
    }
    // Every image was reachable, each at one place, none twice.
    expect(seen.size).toBe(COUNT);
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    expect(new Set(seen.values()).size).toBe(COUNT);
    expect((await page.textContent('.gallery__end'))?.trim()).toBe('That’s all 3,000.');
    // Bounded: a few screens of rows, not 3,000 cards (nor ~100,000 DOM nodes).
    expect(mostMounted).toBeGreaterThan(0);
    expect(mostMounted).toBeLessThan(100);
    const atBottom = await mountedCards(page);
    expect(atBottom.length).toBeLessThan(100);
    expect(atBottom.at(-1)?.pos).toBe(COUNT);
    expect(await page.evaluate(() => document.getElementsByTagName('*').length)).toBeLessThan(8000);
    // The count came with the first page only.
    const pages = graphql.filter((c) => c.operationName === 'GalleryPage');
    expect(pages).toHaveLength(COUNT / 100);
    const asked = pages.map(
      (c) => (c.request.postDataJSON() as { variables: { withTotal?: boolean } }).variables,
    );
    expect(asked.map((v) => v.withTotal)).toEqual([true, ...Array(COUNT / 100 - 1).fill(false)]);

    // Back to the top: the first cards are mounted again, the far ones are not.
    await page.evaluate(() => window.scrollTo(0, 0));
    await settle(page);
    await settle(page);
    const top = await mountedCards(page);
    expect(top[0]).toEqual({ id: seen.get(1), pos: 1 });
    expect(top.length).toBeLessThan(100);
    const lastMounted = top.at(-1)!.pos;

    // The detail view walks all the loaded images, past the last mounted card.
    await page.click(`.card__open[href="#/gallery/${seen.get(lastMounted)}"]`);
    await page.waitForSelector('[role=dialog]');
    for (let k = 1; k <= 3; k++) {
      await page.keyboard.press('ArrowRight');
      const want = lastMounted + k;
      await page.waitForFunction(
        (label) => document.querySelector('[role=dialog]')?.getAttribute('aria-label')?.startsWith(label),
        `Image ${want} of 3,000: `,
      );
      expect(await page.evaluate(() => location.hash)).toBe(`#/gallery/${seen.get(want)}`);
    }
    await page.keyboard.press('Escape');
    await page.waitForSelector('[role=dialog]', { state: 'detached' });

    // Opened by its link far down the list (no card of it mounted): closing it brings its card
    // into the window and gives it focus, on screen.
    const far = seen.get(2000)!;
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.evaluate((id) => {
      location.hash = `#/gallery/${id}`;
    }, far);
    await page.waitForFunction(() =>
      document
        .querySelector('[role=dialog]')
        ?.getAttribute('aria-label')
        ?.startsWith('Image 2,000 of 3,000: '),
    );
    await page.keyboard.press('Escape');
    await page.waitForFunction(
      (id) => document.activeElement?.getAttribute('href') === `#/gallery/${id}`,
      far,
    );
    // On screen, in the grid (not the out-of-sight place of a focused card scrolled away).
    await page.waitForFunction(() => {
      const card = document.activeElement?.closest('li.card');
      const r = card?.getBoundingClientRect();
      return (
        !!r && !card!.classList.contains('card--offscreen') && r.top >= 0 && r.bottom <= window.innerHeight
      );
    });
    await settle(page);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('href'))).toBe(`#/gallery/${far}`);
    expect((await mountedCards(page)).length).toBeLessThan(100);

    // Delete a card there: it leaves at once, the next takes its place, the count goes down.
    const deleted = await page.evaluate(() => {
      const li = document.activeElement!.closest('li.card')!;
      (li.querySelector('.card__delete') as HTMLButtonElement).click();
      return Number(li.getAttribute('aria-posinset'));
    });
    expect(deleted).toBe(2000);
    await page.waitForFunction((id) => !document.querySelector(`.card__open[href="#/gallery/${id}"]`), far);
    await page.waitForFunction(() =>
      document.querySelector('.view__subtitle')?.textContent?.trim().startsWith('2,999 images'),
    );
    const after = await mountedCards(page);
    expect(after.find((c) => c.pos === 2000)?.id).toBe(seen.get(2001));
    expect(after.every((c) => c.id !== far)).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('href'))).toBe(
      `#/gallery/${seen.get(2001)}`,
    );
    const gone = await gateway.graphql<{ image: unknown }>('query($id: ID!) { image(id: $id) { id } }', {
      id: far,
    });
    expect(gone.image).toBeNull();
    await page.close();
  });
});
