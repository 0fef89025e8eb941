import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  imageStates,
  launchChromium,
  recordCspViolations,
  screenshot,
  waitForVisibleLoaded,
} from './helpers/browser';
import { Gateway } from './helpers/gateway';
import { noisyPng } from './helpers/png';

describe('upload', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    // An 8 MiB limit: the 5 MB PNG below passes, a 9 MiB file does not (no 20 MiB file to make).
    // A quota of 20 images, of which the 3 demo photos use 3.
    gateway = await Gateway.start({
      SEED_DEMO: 'true',
      SEED_DEMO_COUNT: '3',
      UPLOAD_MAX_BYTES: String(8 << 20),
      UPLOAD_QUOTA_FILES: '20',
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('uploads a picked PNG with a moving progress bar, and the gallery shows it first', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Uploading (XHR with progress) and the gallery run under the page's CSP.
    const refused = recordCspViolations(page);
    await page.goto(`${gateway.url}/#/gallery`);
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 3);
    await page.getByRole('link', { name: 'Upload images' }).click();
    await page.waitForSelector('[data-testid=dropzone]');
    // What the gateway takes, before anything is sent: its formats, its limit, the quota's use.
    const quotaText = () => page.locator('[data-testid=upload-quota] .quota__text').textContent();
    await page.waitForSelector('[data-testid=upload-quota]');
    expect(await page.locator('[data-testid=upload-limits]').textContent()).toMatch(
      /JPEG, PNG, GIF, WebP or AVIF, up to 8 MiB a file\./,
    );
    expect(await quotaText()).toBe('3 of 20 images used');

    // Every value the progress bar shows, from outside the app.
    await page.evaluate(() => {
      const w = window as unknown as { __progress: number[] };
      w.__progress = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target instanceof Element ? r.target : null;
          const bar = el?.matches('[role=progressbar]') ? el : el?.querySelector('[role=progressbar]');
          const v = bar?.getAttribute('aria-valuenow');
          if (v !== null && v !== undefined) w.__progress.push(Number(v));
        }
      }).observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ['aria-valuenow'],
      });
    });
    // A slow uplink (4 MB/s), so a 5 MB file takes long enough to watch.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 4 * 1024 * 1024,
    });

    const png = noisyPng(1600, 1200);
    await page.setInputFiles('[data-testid=file-input]', {
      name: 'noisy-sunset.png',
      mimeType: 'image/png',
      buffer: png,
    });
    await page.waitForSelector('.upload[data-status=uploading]');
    await page.waitForTimeout(300);
    await screenshot(page, 'upload-progress');
    await page.waitForSelector('.upload[data-status=done]', { timeout: 60_000 });
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });

    const progress = await page.evaluate(() => (window as unknown as { __progress: number[] }).__progress);
    expect(
      progress.some((v) => v > 0 && v < 100),
      `progress seen: ${progress.join(',')}`,
    ).toBe(true);
    expect(progress.at(-1)).toBe(100);
    // Asked again after the upload: the gateway's own count now holds it.
    await page.waitForFunction(
      () =>
        document.querySelector('[data-testid=upload-quota] .quota__text')?.textContent ===
        '4 of 20 images used',
    );
    expect(await page.locator('.upload[data-status=done] .upload__status').textContent()).toContain(
      'Uploaded',
    );
    await page.waitForSelector('.upload__thumb .smart-image[data-state=loaded]');
    // The new image's thumbnail as it lands: the thumb preset through its srcset, not the original.
    const landed = await page.$eval('.upload__thumb img', (img) => ({
      srcset: img.getAttribute('srcset'),
      currentSrc: (img as HTMLImageElement).currentSrc,
    }));
    expect(landed.srcset).toMatch(/ 320w/);
    expect(landed.currentSrc).toMatch(/[?&]v=320x320-cover-webp-75(&|$)/);
    await screenshot(page, 'upload-done');

    await page.getByRole('link', { name: 'View gallery' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 4);
    await waitForVisibleLoaded(page);
    const [first] = await imageStates(page);
    const alt = await page.locator('.card img').first().getAttribute('alt');
    expect(alt).toMatch(/^PNG image, 1600 × 1200, added /);
    // The tile's thumbnail (320×320 cover at 1x): the chosen file's own width, not naturalWidth,
    // which an <img> with a srcset scales by the density its `sizes` gives the entry.
    const chosen = await page.$eval('.card img', (img) => (img as HTMLImageElement).currentSrc);
    expect(chosen).toMatch(/[?&]v=320x320-cover-webp-75(&|$)/);
    const fileWidth = await page.evaluate(async (src) => {
      const probe = new Image();
      probe.src = src;
      await probe.decode();
      return probe.naturalWidth;
    }, chosen);
    expect(fileWidth).toBe(320);
    expect(first!.state).toBe('loaded');
    expect(await page.locator('#gallery-title + .view__subtitle').textContent()).toContain('4 images');

    // And it can be deleted again from its card (after a confirmation).
    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('.card').first().hover();
    // Named by its place: the new image is the first of four.
    await page.getByRole('button', { name: 'Delete image 1 of 4', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('.smart-image').length === 3);
    expect(await page.locator('#gallery-title + .view__subtitle').textContent()).toContain('3 images');
    const left = await gateway.graphql<{ images: { totalCount: number } }>('{ images { totalCount } }');
    expect(left.images.totalCount).toBe(3);
    expect(refused).toEqual([]);
    await page.close();
  });

  it('takes files dropped on the drop zone, says which were refused and why, and offers no Retry for them', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${gateway.url}/#/upload`);
    await page.waitForSelector('[data-testid=upload-quota]');
    const sent: string[] = [];
    page.on('request', (r) => {
      if ((r.headers()['content-type'] ?? '').startsWith('multipart/')) sent.push(r.url());
    });
    const dropzone = page.locator('[data-testid=dropzone]');
    const good = noisyPng(64, 48).toString('base64');
    const transfer = await page.evaluateHandle((b64) => {
      const dt = new DataTransfer();
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], 'tiny.png', { type: 'image/png' }));
      // A text file named like an image: the gateway judges by content, not by name.
      dt.items.add(new File(['just some notes'], 'notes.png', { type: 'image/png' }));
      // Over the gateway's UPLOAD_MAX_BYTES (8 MiB).
      dt.items.add(new File([new Uint8Array(9 << 20)], 'huge.png', { type: 'image/png' }));
      return dt;
    }, good);
    await dropzone.dispatchEvent('dragenter', { dataTransfer: transfer });
    expect(await dropzone.getAttribute('class')).toContain('is-dragging');
    await dropzone.dispatchEvent('dragover', { dataTransfer: transfer });
    await dropzone.dispatchEvent('drop', { dataTransfer: transfer });

    await page.waitForSelector('.upload[data-status=done]');
    await page.waitForFunction(() => document.querySelectorAll('.upload[data-status=failed]').length === 2);
    const failed = (name: string) =>
      page.locator('.upload[data-status=failed]').filter({ has: page.getByText(name, { exact: true }) });
    expect(await failed('notes.png').locator('.upload__error').textContent()).toMatch(
      /not a JPEG, PNG, GIF, WebP or AVIF/,
    );
    // Refused here, before a byte of it was sent: the app knew the gateway's limit.
    expect(await failed('huge.png').locator('.upload__error').textContent()).toBe(
      'The file is 9 MiB (9,437,184 bytes), larger than the upload limit of 8 MiB (8,388,608 bytes)',
    );
    expect(sent).toHaveLength(2);
    // Trying the same file again cannot succeed: no Retry, a Dismiss naming the file instead.
    for (const name of ['notes.png', 'huge.png']) {
      expect(await failed(name).getByRole('button', { name: /Retry/ }).count()).toBe(0);
      expect(
        await failed(name)
          .getByRole('button', { name: `Dismiss ${name}`, exact: true })
          .count(),
      ).toBe(1);
    }
    await screenshot(page, 'upload-refused');
    await failed('huge.png').getByRole('button', { name: 'Dismiss huge.png' }).click();
    expect(await page.locator('.upload[data-status=failed]').count()).toBe(1);
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('file-input');
    expect(await page.locator('.upload[data-status=done] .upload__name').textContent()).toBe('tiny.png');
    expect(await dropzone.getAttribute('class')).not.toContain('is-dragging');

    // The file input is reachable by keyboard (the drop zone shows its focus ring).
    await page.locator('[data-testid=file-input]').focus();
    const ring = await dropzone.evaluate((el) => getComputedStyle(el).outlineStyle);
    expect(ring).toBe('solid');
    await page.close();
  });

  it('offers Retry after a network failure, and the retry uploads the file', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 812 } });
    await page.goto(`${gateway.url}/#/upload`);
    // The first upload's request dies on the way (the connection drops); the rest go through.
    let dropped = 0;
    await page.route('**/graphql', (route) => {
      const multipart = (route.request().headers()['content-type'] ?? '').startsWith('multipart/');
      if (multipart && dropped === 0) {
        dropped++;
        return route.abort('connectionreset');
      }
      return route.continue();
    });
    await page.setInputFiles('[data-testid=file-input]', {
      name: 'flaky.png',
      mimeType: 'image/png',
      buffer: noisyPng(64, 48),
    });
    const item = page.locator('.upload').filter({ has: page.getByText('flaky.png', { exact: true }) });
    await page.waitForSelector('.upload[data-status=failed]');
    expect(await item.locator('.upload__error').textContent()).toBe('Network error while uploading');
    expect(await item.getByRole('button', { name: /^Dismiss/ }).count()).toBe(0);
    await screenshot(page, 'upload-network-error');

    await item.getByRole('button', { name: 'Retry flaky.png', exact: true }).click();
    await page.waitForSelector('.upload[data-status=done]');
    expect(dropped).toBe(1);
    expect(await item.locator('.upload__status').textContent()).toContain('Uploaded');
    await page.close();
  });
});
