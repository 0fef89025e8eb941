import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../server/test/support/cli.js';
import { launchChromium, screenshot, waitForVisibleLoaded } from './helpers/browser';
import { Gateway } from './helpers/gateway';
import { noisyPng } from './helpers/png';

const SECRET = 'e2e-sign-in-secret-e2e-sign-in-secret-0123';
const AUTH = { AUTH_JWT_SECRET: SECRET, PROXY_TOKEN_SECRET: 'e2e-sign-in-proxy-secret-0123' };

// The demo app with auth on: a sign-in view instead of a gallery of errors; a token from
// `signet token` signs in, and sign-out forgets it.
describe('sign-in (auth on)', () => {
  let gateway: Gateway;
  let browser: Browser;
  let token: string;

  beforeAll(async () => {
    gateway = await Gateway.start({ ...AUTH, SEED_DEMO: 'true', SEED_DEMO_COUNT: '6' }, 150_000);
    browser = await launchChromium();
    const run = await runCli(['token', '--sub', 'demo'], AUTH);
    expect(run.code, run.stderr).toBe(0);
    token = run.stdout.trim();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('signs in with a token, stays signed in across a reload, and signs out', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${gateway.url}/#/gallery`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.locator('.smart-image').count()).toBe(0);
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    await screenshot(page, 'sign-in');

    await page.getByLabel('Token').fill('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toContain('The gateway refused this token');
    // Focus is back in the field the error describes (the button, disabled meanwhile, lost it).
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sign-in-token');

    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('.smart-image');
    // Signed in: focus is on the gallery's heading, not dropped on the page's body.
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('Gallery');
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    await waitForVisibleLoaded(page);
    expect(await page.locator('.smart-image').count()).toBe(6);
    expect(await page.getByTestId('session').textContent()).toContain('demo');
    expect(await page.evaluate(() => localStorage.getItem('signet.token'))).toBe(token);

    await page.reload();
    await page.waitForSelector('.smart-image');
    expect(await page.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('Sign in');
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    expect(await page.evaluate(() => localStorage.getItem('signet.token'))).toBeNull();
    expect(await page.locator('.smart-image').count()).toBe(0);
    await page.close();
  });

  it('the hint’s command, run as written, gives a token for the demo photos and the Stats view', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 812 } });
    await page.goto(`${gateway.url}/#/gallery`);
    const command =
      (await page.getByTestId('dev-token-hint').locator('.sign-in__command').textContent()) ?? '';
    expect(command).toMatch(/^npm run signet -- token /);
    // The command wraps between words on a phone; it does not run off the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)).toBe(false);
    const run = await runCli(command.split(' -- ')[1]!.split(' '), AUTH);
    expect(run.code, run.stderr).toBe(0);

    await page.getByLabel('Token').fill(run.stdout.trim());
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('.smart-image');
    expect(await page.locator('.smart-image').count()).toBe(6); // the demo photos, not an empty gallery
    await page.getByRole('link', { name: 'Stats' }).click();
    await page.waitForSelector('[data-testid=kpis]'); // an admin's view
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.close();
  });

  it('a token that runs out mid-use: the sign-in view comes over the page, which keeps its upload list', async () => {
    // A token that lives 6 s, for the same viewer as the one that renews it.
    const short = await runCli(['token', '--sub', 'demo', '--ttl', '6'], AUTH);
    expect(short.code, short.stderr).toBe(0);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${gateway.url}/#/upload`);
    await page.getByLabel('Token').fill(short.stdout.trim());
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('[data-testid=dropzone]');
    await page.setInputFiles('[data-testid=file-input]', {
      name: 'early.png',
      mimeType: 'image/png',
      buffer: noisyPng(64, 48),
    });
    await page.waitForSelector('.upload[data-status=done] .smart-image[data-state=loaded]');

    // Nothing clicked: the gateway ends the thumbnail's live-URL stream when the token expires,
    // and the page's next question with it is refused. The sign-in form, saying why, comes over
    // the page; focus is in its field.
    await page.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 20_000 });
    expect(await page.getByRole('status').textContent()).toContain('no longer accepted');
    expect(await page.locator('[data-testid=dropzone]').isVisible()).toBe(false);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sign-in-token');
    await screenshot(page, 'session-ended');

    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('[data-testid=dropzone]');
    // The same page, as it was, and it uploads again with the new token.
    expect(await page.locator('.upload[data-status=done] .upload__name').textContent()).toBe('early.png');
    await page.setInputFiles('[data-testid=file-input]', {
      name: 'late.png',
      mimeType: 'image/png',
      buffer: noisyPng(64, 48),
    });
    await expect.poll(() => page.locator('.upload[data-status=done]').count()).toBe(2);
    expect(await page.getByTestId('session').textContent()).toContain('demo');

    // Both are the viewer's: the gallery lists them above the demo photos.
    await page.getByRole('link', { name: 'View gallery' }).click();
    await expect.poll(() => page.locator('.smart-image').count()).toBe(8);
    const left = await gateway.graphql<{ images: { edges: { node: { id: string } }[] } }>(
      '{ images(first: 2) { edges { node { id } } } }',
      {},
      token,
    );
    for (const { node } of left.images.edges) {
      await gateway.graphql('mutation($id: ID!) { deleteImage(id: $id) }', { id: node.id }, token);
    }
    await page.close();
  });

  it('a token that runs out with the detail view open: the keyboard signs in, and another viewer sees nothing of the last', async () => {
    // The short one last: it lives 8 s from its issue, and the page needs a few of them.
    const other = await runCli(['token', '--sub', 'someone-else'], AUTH);
    const short = await runCli(['token', '--sub', 'demo', '--ttl', '8'], AUTH);
    expect([short.code, other.code], short.stderr + other.stderr).toEqual([0, 0]);
    const issuedAt = Date.now();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${gateway.url}/#/gallery`);
    await page.getByLabel('Token').fill(short.stdout.trim());
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('.card').count()).toBe(6);
    await page.getByRole('link', { name: /^Open image 1 of 6/ }).click();
    await page.getByRole('dialog').waitFor();

    await page.waitForTimeout(Math.max(0, issuedAt + 9_000 - Date.now()));
    // The next image's details are asked with the expired token (unless the page asked first).
    await page.keyboard.press('ArrowRight');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // Focus is in the token field, and the hidden dialog no longer takes the keys.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('sign-in-token');
    await page.keyboard.insertText(other.stdout.trim());
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Sign in');
    await page.keyboard.press('Enter');

    // Another viewer: the page starts afresh, with nothing of demo's (no cached page, no dialog).
    await expect.poll(() => page.getByTestId('session').textContent()).toContain('someone-else');
    await page.locator('.empty').waitFor();
    expect(await page.locator('.card').count()).toBe(0);
    expect(await page.locator('.smart-image').count()).toBe(0);
    await page.close();
  });

  it('tabs follow each other: a sign-out in one leaves no tab showing the pages, a sign-in comes back to all', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const first = await context.newPage();
    await first.goto(`${gateway.url}/#/gallery`);
    await first.getByLabel('Token').fill(token);
    await first.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => first.locator('.card').count()).toBe(6);
    // The second tab shares the stored token: signed in from the start.
    const second = await context.newPage();
    await second.goto(`${gateway.url}/#/gallery`);
    await expect.poll(() => second.locator('.card').count()).toBe(6);

    await first.getByRole('button', { name: 'Sign out' }).click();
    await second.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await second.locator('.card').count()).toBe(0);
    expect(await second.getByTestId('session').count()).toBe(0);

    await first.getByLabel('Token').fill(token);
    await first.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => second.locator('.card').count()).toBe(6);
    expect(await second.getByTestId('session').textContent()).toContain('demo');
    await context.close();
  });
});
