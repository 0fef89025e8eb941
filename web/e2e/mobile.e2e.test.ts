import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../server/test/support/cli.js';
import { launchChromium, screenshot } from './helpers/browser';
import { Gateway } from './helpers/gateway';

const SECRET = 'e2e-mobile-secret-e2e-mobile-secret-012345';
const AUTH = { AUTH_JWT_SECRET: SECRET, PROXY_TOKEN_SECRET: 'e2e-mobile-proxy-secret-0123' };

/** A signed-in page (the token in storage before the app starts) at a phone's size. */
async function phone(browser: Browser, url: string, token: string, width: number, height: number) {
  const context = await browser.newContext({
    viewport: { width, height },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  });
  await context.addInitScript((t) => localStorage.setItem('signet.token', t), token);
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

/** Where an element is, and the layout viewport it must fit in. */
const box = (page: Page, selector: string) =>
  page.$eval(selector, (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, innerWidth, innerHeight };
  });

/**
 * The WCAG contrast ratio of an element's text against what is behind it: its own background, or
 * the first ancestor's that is not transparent (colours as the browser computed them, sRGB).
 */
const contrast = (page: Page, selector: string, of: 'color' | 'borderTopColor' = 'color') =>
  page.$eval(
    selector,
    (el, of) => {
      const rgb = (c: string) => {
        const m = c.match(/[\d.]+/g)?.map(Number) ?? [];
        return { r: m[0] ?? 0, g: m[1] ?? 0, b: m[2] ?? 0, a: m[3] ?? 1 };
      };
      const lum = ({ r, g, b }: { r: number; g: number; b: number }) =>
        [r, g, b]
          .map((v) => v / 255)
          .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
          .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i]!, 0);
      let behind: Element | null = el;
      let bg = rgb('rgba(0,0,0,0)');
      while (behind) {
        bg = rgb(getComputedStyle(behind).backgroundColor);
        if (bg.a > 0.9) break;
        behind = behind.parentElement;
      }
      const fg = rgb(getComputedStyle(el)[of]);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a) as [number, number];
      return Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100;
    },
    of,
  );

// Phones, signed in: the top bar (tabs, link state, viewer and Sign out) fits the screen's width,
// and the detail view's controls are on screen. Dark mode keeps its text readable (4.5:1).
describe('phones and dark mode (auth on)', () => {
  let gateway: Gateway;
  let browser: Browser;
  let token: string;

  beforeAll(async () => {
    gateway = await Gateway.start({ ...AUTH, SEED_DEMO: 'true', SEED_DEMO_COUNT: '4' }, 150_000);
    browser = await launchChromium();
    // An admin: the Stats tab too, the widest top bar there is.
    const run = await runCli(['token', '--sub', 'demo', '--admin'], AUTH);
    expect(run.code, run.stderr).toBe(0);
    token = run.stdout.trim();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('nothing is wider than the screen at 320–414 px, and the detail view’s Close is on screen', async () => {
    for (const [width, height] of [
      [320, 568],
      [360, 740],
      [375, 667],
      [414, 896],
    ] as const) {
      const what = `${width}×${height}`;
      const page = await phone(browser, `${gateway.url}/#/gallery`, token, width, height);
      await page.getByTestId('session').waitFor();
      await page.waitForFunction(() => document.querySelectorAll('.card').length === 4);
      const page_ = await page.evaluate(() => ({
        innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
      }));
      // A phone widens its layout viewport to the widest content: innerWidth grows past the screen.
      expect(page_.innerWidth, what).toBe(width);
      expect(page_.scrollWidth, what).toBeLessThanOrEqual(page_.innerWidth);
      const signOut = await box(page, '[data-testid=session] button');
      expect(signOut.right, what).toBeLessThanOrEqual(width);
      for (const tab of ['Gallery', 'Upload', 'Stats']) {
        const link = await page.getByRole('link', { name: tab, exact: true }).boundingBox();
        expect(link && link.x + link.width, `${what} ${tab}`).toBeLessThanOrEqual(width);
      }
      if (width === 375) await screenshot(page, 'mobile-375-signed-in');

      await page.locator('.card__open').first().click();
      await page.getByTestId('image-detail').waitFor();
      const close = await box(page, '[data-testid=image-detail] button[aria-label=Close]');
      expect(close.innerWidth, what).toBe(width);
      expect(close.bottom, what).toBeLessThanOrEqual(height);
      expect(close.right, what).toBeLessThanOrEqual(width);
      expect(close.top, what).toBeGreaterThanOrEqual(0);
      if (width === 375) await screenshot(page, 'mobile-375-detail');
      await page.context().close();
    }
  });

  it('the detail view: the page behind stays put, Back after closing leaves the gallery, focus comes back on screen', async () => {
    const { images } = await gateway.graphql<{ images: { edges: { node: { id: string } }[] } }>(
      '{ images(first: 4) { edges { node { id } } } }',
      {},
      token,
    );
    const ids = images.edges.map((e) => e.node.id);
    const context = await browser.newContext({ viewport: { width: 375, height: 500 } });
    await context.addInitScript((t) => localStorage.setItem('signet.token', t), token);
    const page = await context.newPage();
    await page.goto(`${gateway.url}/#/upload`);
    await page.getByRole('heading', { name: 'Upload' }).waitFor();
    await page.getByRole('link', { name: 'Gallery', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('.card').length === 4);

    // Opened from its card (a link: the browser pushes #/gallery/<id>).
    await page.locator('.card__open').first().click();
    await page.getByTestId('image-detail').waitFor();
    await page.mouse.move(180, 250);
    await page.mouse.wheel(0, 900);
    await page.waitForTimeout(300);
    expect(await page.evaluate(() => scrollY)).toBe(0);
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
    expect(await page.evaluate(() => location.hash)).toBe('#/gallery');
    // One Back press leaves the gallery: closing left no second #/gallery entry behind.
    await page.goBack();
    await page.waitForFunction(() => location.hash === '#/upload');
    await page.getByRole('heading', { name: 'Upload' }).waitFor();

    // Opened by its link, the fourth image (below the fold): on close, focus is on its card, on screen.
    await page.goto('about:blank');
    await page.goto(`${gateway.url}/#/gallery/${ids[3]}`);
    await page.getByTestId('image-detail').waitFor();
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=image-detail]', { state: 'detached' });
    const back = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const r = el.getBoundingClientRect();
      return { href: el.getAttribute('href'), top: r.top, bottom: r.bottom, innerHeight };
    });
    expect(back.href).toBe(`#/gallery/${ids[3]}`);
    expect(back.top).toBeGreaterThanOrEqual(0);
    expect(back.bottom).toBeLessThanOrEqual(back.innerHeight);
    await context.close();
  });

  it('a link to an image beyond the pages loaded opens it; a link to none says so', async () => {
    const { images } = await gateway.graphql<{ images: { edges: { node: { id: string } }[] } }>(
      '{ images(first: 4) { edges { node { id } } } }',
      {},
      token,
    );
    const last = images.edges.at(-1)!.node.id;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript((t) => localStorage.setItem('signet.token', t), token);
    const page = await context.newPage();
    // Two images a page, and no second page (the end of the list is on screen: it would come at
    // once): the fourth is not loaded when the link is followed.
    await page.route('**/graphql', (route) =>
      /"after"\s*:\s*"/.test(route.request().postData() ?? '') ? route.abort() : route.fallback(),
    );
    await page.goto(`${gateway.url}/?first=2#/gallery/${last}`);
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await page.locator('.card').count()).toBe(2);
    expect(await dialog.getAttribute('aria-label')).toMatch(/^JPEG image, /);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    await page.goto(`${gateway.url}/#/gallery/00000000-0000-4000-8000-000000000000`);
    const alert = page.getByTestId('image-not-found');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('Image not found');
    await page.getByRole('button', { name: 'Back to the gallery' }).click();
    await alert.waitFor({ state: 'detached' });
    expect(await page.evaluate(() => location.hash)).toBe('#/gallery');
    await context.close();
  });

  it('light mode: the token field’s edge reads at 3:1, and Make public is a 24 px target', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 667 }, colorScheme: 'light' });
    const page = await context.newPage();
    await page.goto(`${gateway.url}/#/gallery`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await contrast(page, '#sign-in-token', 'borderTopColor')).toBeGreaterThanOrEqual(3);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.card').length === 4);
    const toggle = await page.getByTestId('visibility-toggle').first().boundingBox();
    expect(toggle?.height).toBeGreaterThanOrEqual(24);
    expect(toggle?.width).toBeGreaterThanOrEqual(24);
    await context.close();
  });

  it('dark mode: primary buttons, the skip link and Delete read at 4.5:1 or more', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    const page = await context.newPage();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${gateway.url}/#/gallery`);
    // Signed out: the sign-in view's primary button.
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await contrast(page, '.sign-in__form .button--primary')).toBeGreaterThanOrEqual(4.5);
    // The token field's edge: 3:1 against the page, as a control's must be (WCAG 1.4.11).
    expect(await contrast(page, '#sign-in-token', 'borderTopColor')).toBeGreaterThanOrEqual(3);

    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.card').length === 4);
    expect(await contrast(page, '.view__header .button--primary')).toBeGreaterThanOrEqual(4.5);
    await page.locator('.skip-link').focus(); // shown when focused
    expect(await contrast(page, '.skip-link')).toBeGreaterThanOrEqual(4.5);

    await page.locator('.card__open').first().click();
    await page.getByTestId('image-detail').waitFor();
    const del = '[data-testid=image-detail] .button--danger';
    expect(await page.textContent(del)).toContain('Delete');
    expect(await contrast(page, del)).toBeGreaterThanOrEqual(4.5);
    await context.close();
  });
});
