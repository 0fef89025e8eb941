import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageStates, launchChromium, recordGraphql, waitForVisibleLoaded } from './helpers/browser';
import { Gateway } from './helpers/gateway';

interface Watch {
  errors: string[];
  srcs: Record<string, string[]>;
  broken: number;
}

describe('live URL refresh', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    // URLs live 20 s and are re-signed 10 s before they expire: a one-minute visit outlives
    // each of them several times over.
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '8',
      URL_TTL_SECONDS: '20',
      REFRESH_AHEAD_SECONDS: '10',
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('keeps every image whole for 60 s of expiring URLs by swapping in pushed ones', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const graphql = recordGraphql(page);
    // Record, from the first byte, every image load error and every src an image ever had.
    await page.addInitScript(() => {
      const w = window as unknown as { __watch: Watch };
      w.__watch = { errors: [], srcs: {}, broken: 0 };
      document.addEventListener(
        'error',
        (e) => {
          if (e.target instanceof HTMLImageElement) w.__watch.errors.push(e.target.src);
        },
        true,
      );
      const note = (img: HTMLImageElement) => {
        const id = img.closest<HTMLElement>('.smart-image')?.dataset['imageId'];
        const src = img.getAttribute('src');
        if (!id || !src) return;
        const list = w.__watch.srcs[id] ?? [];
        w.__watch.srcs[id] = list;
        if (list.at(-1) !== src) list.push(src);
      };
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.target instanceof HTMLImageElement) note(r.target);
          for (const n of r.addedNodes) {
            if (n instanceof HTMLImageElement) note(n);
            if (n instanceof HTMLElement) n.querySelectorAll('img').forEach(note);
          }
        }
      }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
    });

    const openedAt = Date.now();
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 8);
    await waitForVisibleLoaded(page);

    // Look every half second for a minute: no image may ever be anything but whole.
    let samples = 0;
    while (Date.now() - openedAt < 60_000) {
      const states = await imageStates(page);
      for (const s of states) {
        expect(s.state, `${s.id} at ${Date.now() - openedAt} ms`).toBe('loaded');
        expect(s.naturalWidth, s.id).toBeGreaterThan(0);
      }
      samples++;
      await page.waitForTimeout(500);
    }
    expect(samples).toBeGreaterThan(60);

    const watch = await page.evaluate(() => (window as unknown as { __watch: Watch }).__watch);
    expect(watch.errors).toEqual([]);
    const states = await imageStates(page);
    expect(states).toHaveLength(8);
    console.info(
      `URLs shown per image over 60 s: ${states.map((s) => watch.srcs[s.id]?.length ?? 0).join(', ')}; ` +
        `${samples} samples, ${watch.errors.length} load errors`,
    );
    for (const s of states) {
      const history = watch.srcs[s.id] ?? [];
      // The page's URL, then pushed ones: with a 20 s life each, a minute needs at least three.
      expect(history.length, `${s.id}: ${history.length} URLs`).toBeGreaterThanOrEqual(3);
      expect(history.at(-1)).toBe(s.src);
      // What it shows now is still valid (the local bucket's `e` is the expiry, in seconds).
      const expires = Number(new URL(s.src!).searchParams.get('e')) * 1000;
      expect(expires).toBeGreaterThan(Date.now());
      const head = await page.evaluate(async (u) => (await fetch(u, { method: 'HEAD' })).status, s.src!);
      expect(head).toBe(200);
    }

    // Pushed, not polled: one subscription stream, no refetches, no forced re-signs.
    expect(graphql.filter((c) => c.stream)).toHaveLength(1);
    const names = graphql.filter((c) => !c.stream).map((c) => c.operationName);
    expect(names.filter((n) => n === 'GalleryPage')).toHaveLength(1);
    expect(names.filter((n) => n === 'ImageUrls' || n === 'RefreshSignedUrls')).toEqual([]);
    await page.close();
  });
});
