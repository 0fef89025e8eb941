import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type GraphqlCall,
  imageStates,
  launchChromium,
  recordGraphql,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const COUNT = 6;
/** The local driver names a variant in `v=` (server/src/storage/variant.ts); an original has none. */
const VARIANT = /[?&]v=/;
const THUMB = /[?&]v=\d+x\d+-cover-webp-75(&|$)/;
const DETAIL_IMAGE = '[data-testid=image-detail] .smart-image';

interface Shown {
  srcset: string | null;
  currentSrc: string;
  naturalWidth: number;
}

const shown = (page: Page, selector: string): Promise<Shown[]> =>
  page.$$eval(selector, (imgs) =>
    (imgs as HTMLImageElement[]).map((img) => ({
      srcset: img.getAttribute('srcset'),
      currentSrc: img.currentSrc,
      naturalWidth: img.naturalWidth,
    })),
  );

/** Every answer the page got that carries GraphQL errors (streams aside), by operation. */
async function failedAnswers(calls: GraphqlCall[]): Promise<string[]> {
  const out: string[] = [];
  for (const call of calls) {
    if (call.stream) continue;
    const body = (await call.response) as { errors?: { message: string }[] } | undefined;
    if (body?.errors?.length)
      out.push(`${call.operationName}: ${body.errors.map((e) => e.message).join('; ')}`);
  }
  return out;
}

/** The `preset` each live-URL stream the page opened follows (undefined: the originals'). */
const streamPresets = (calls: GraphqlCall[]) =>
  calls
    .filter((c) => c.stream)
    .map((c) => (c.request.postDataJSON() as { variables?: { preset?: string } }).variables?.preset);

// The gateway's presets are a setting (IMAGE_PRESETS, IMAGE_TRANSFORMS): the bundled app asks
// which there are, shows `thumb` and `medium` where the gateway has them and the original where
// it does not. Run with PERSISTED_OPERATIONS_ONLY and the allow-list `npm run persisted` writes,
// as the Docker image does: every document the app sends is in it.
describe('the web app on a gateway without the thumb or medium preset (persisted operations only)', () => {
  let dir: string;
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'signet-e2e-presets-'));
    const manifest = path.join(dir, 'persisted-operations.json');
    await promisify(execFile)('npm', ['run', 'persisted', '--', manifest], { cwd: ROOT });
    const ops = Object.values(JSON.parse(await readFile(manifest, 'utf8')) as Record<string, string>);
    expect(ops.some((d) => d.includes('query GalleryPage'))).toBe(true);
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: String(COUNT),
      PERSISTED_OPERATIONS_FILE: manifest,
      PERSISTED_OPERATIONS_ONLY: 'true',
      IMAGE_PRESETS: 'hero=1600x:inside:webp:80',
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Opens the gallery and then the first image; checks that every picture loads, that nothing
   * the page asked failed, and returns what the tiles, the detail view and the streams showed.
   */
  async function visit() {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const graphql = recordGraphql(page);
    try {
      await page.goto(`${gateway.url}/#/gallery`);
      await page
        .waitForFunction((n) => document.querySelectorAll('.card .smart-image').length === n, COUNT, {
          timeout: 30_000,
        })
        .catch(async (err: unknown) => {
          const banner = await page.locator('[role=alert]').allTextContents();
          throw new Error(`no gallery: ${banner.join(' | ') || String(err)}`);
        });
      await waitForVisibleLoaded(page);
      const tiles = await shown(page, '.card .smart-image img');
      const states = await imageStates(page);
      // Live URLs: the tiles' stream is open and the badge says so.
      await page.waitForSelector('.link-state[data-state=live]', { timeout: 15_000 });

      await page.locator('.card__open').first().click();
      await page
        .waitForFunction(
          (sel) => {
            const el = document.querySelector<HTMLElement>(sel);
            const img = el?.querySelector('img');
            return el?.dataset['state'] === 'loaded' && img?.complete === true && img.naturalWidth > 0;
          },
          DETAIL_IMAGE,
          { timeout: 30_000 },
        )
        .catch(async (err: unknown) => {
          const banner = await page.locator('[role=alert]').allTextContents();
          throw new Error(`no detail picture: ${banner.join(' | ') || String(err)}`);
        });
      const [detail] = await shown(page, `${DETAIL_IMAGE} img`);
      await page.keyboard.press('Escape');
      await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
      return {
        tiles,
        states,
        detail: detail!,
        failed: await failedAnswers(graphql),
        streams: streamPresets(graphql),
      };
    } finally {
      await page.close();
    }
  }

  function expectOriginals(pictures: Shown[]) {
    for (const p of pictures) {
      expect(p.srcset, p.currentSrc).toBeNull(); // no preset, no srcset
      expect(p.currentSrc).toContain('/local-bucket/');
      expect(p.currentSrc).not.toMatch(VARIANT);
      expect(p.naturalWidth).toBeGreaterThan(0);
    }
  }

  it('IMAGE_PRESETS with neither: the gallery and the detail view show the originals', async () => {
    const seen = await visit();
    expect(seen.failed).toEqual([]);
    expect(seen.tiles).toHaveLength(COUNT);
    expectOriginals(seen.tiles);
    expect(seen.states.every((s) => s.state === 'loaded' && s.source === 'signed')).toBe(true);
    expectOriginals([seen.detail]);
    // The originals' live URLs: no stream asks for a preset the gateway does not have.
    expect(seen.streams.length).toBeGreaterThan(0);
    expect(seen.streams.every((p) => p === undefined)).toBe(true);
  });

  it('IMAGE_TRANSFORMS=off: the same, the originals everywhere', async () => {
    await gateway.restart({ IMAGE_TRANSFORMS: 'off' });
    const seen = await visit();
    expect(seen.failed).toEqual([]);
    expect(seen.tiles).toHaveLength(COUNT);
    expectOriginals(seen.tiles);
    expectOriginals([seen.detail]);
    expect(seen.streams.every((p) => p === undefined)).toBe(true);
  });

  it('thumb without medium: thumbnails in the gallery, the original in the detail view', async () => {
    await gateway.restart({ IMAGE_TRANSFORMS: 'presets', IMAGE_PRESETS: 'thumb=320x320:cover:webp:75' });
    const seen = await visit();
    expect(seen.failed).toEqual([]);
    expect(seen.tiles).toHaveLength(COUNT);
    for (const tile of seen.tiles) {
      expect(tile.srcset).toMatch(/ 320w/);
      expect(tile.currentSrc).toMatch(THUMB);
    }
    expect(seen.streams).toContain('thumb');
    expectOriginals([seen.detail]);
  });
});
