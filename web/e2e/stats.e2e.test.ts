import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot, waitForVisibleLoaded } from './helpers/browser';
import { Gateway } from './helpers/gateway';

describe('stats view', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: '12' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('shows the admin the numbers of urlStats and a chart of the last days', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Some traffic first: the gallery resolves URLs (misses, then hits on a second look).
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForSelector('.smart-image');
    await waitForVisibleLoaded(page);
    await gateway.graphql('{ images(first: 12) { edges { node { signedUrl { url } } } } }');

    await page.getByRole('link', { name: 'Stats' }).click();
    await page.waitForSelector('[data-testid=kpis]');
    await expect
      .poll(
        async () => {
          await page.getByRole('button', { name: 'Refresh' }).click();
          const text = await page.locator('.kpi').first().textContent();
          return Number(text?.replace(/\D+/g, ' ').trim().split(' ')[0] ?? 0);
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBeGreaterThan(0);
    const labels = await page.locator('.kpi__label').allTextContents();
    expect(labels).toEqual([
      'Requests',
      'Hit rate',
      'Avg resolve time',
      'Unique images',
      'Refreshes',
      'Errors',
      'Refresh backlog',
      'Refresh lag',
    ]);
    // The chart: one bar pair per day, drawn as SVG, with a data table for screen readers.
    expect(await page.locator('.chart svg g > title').count()).toBe(7);
    expect(await page.locator('.chart table tbody tr').count()).toBe(7);
    await page.waitForTimeout(300); // let the last poll paint
    await screenshot(page, 'stats-desktop');

    // The day labels, as drawn: none runs into the next one ("30 Mon1 Tue 2 Wed" at 375 px).
    const labelBoxes = () =>
      page.$$eval('.chart__label', (els) =>
        els.map((el) => {
          const r = el.getBoundingClientRect();
          return { left: r.left, right: r.right, text: el.textContent?.replace(/\s+/g, ' ').trim() };
        }),
      );
    const assertApart = (boxes: { left: number; right: number; text?: string }[]) => {
      expect(boxes).toHaveLength(7);
      for (let i = 1; i < boxes.length; i++) {
        expect(boxes[i]!.left, `${boxes[i - 1]!.text} | ${boxes[i]!.text}`).toBeGreaterThan(
          boxes[i - 1]!.right + 2,
        );
      }
    };
    assertApart(await labelBoxes());

    for (const width of [390, 375]) {
      await page.setViewportSize({ width, height: 844 });
      // Two frames: the chart's resize observer has run, and what it changed has been laid out.
      await page.evaluate(
        () => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))),
      );
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      expect(overflow).toBe(false);
      assertApart(await labelBoxes());
    }
    // Narrow, each label is the day's name over its date: two lines.
    expect(await page.locator('.chart__label').first().locator('tspan').count()).toBe(2);
    await screenshot(page, 'stats-narrow');
    await page.close();
  });
});
