import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot } from './helpers/browser';
import { Gateway } from './helpers/gateway';

// GraphiQL as a new user meets it: `/graphql` in a browser on a machine that cannot reach the
// internet (this one cannot). Yoga's default page loaded GraphiQL from a CDN and never rendered.
describe('GraphiQL (bundled, offline)', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({});
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('loads from the gateway alone and runs { viewer { id } }', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const origin = new URL(gateway.url).origin;
    const elsewhere: string[] = [];
    const failed: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      // blob: URLs are the editor's workers, made in the page from inline text.
      if (u.protocol !== 'blob:' && u.protocol !== 'data:' && u.origin !== origin) elsewhere.push(r.url());
    });
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.url()}: HTTP ${r.status()}`);
    });
    // A CSP violation or a script error shows here (and would leave GraphiQL half-working).
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));

    const res = await page.goto(`${gateway.url}/graphql`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(await page.title()).toBe('Signet');

    const editor = page.locator('.graphiql-query-editor .monaco-editor').first();
    await editor.waitFor({ timeout: 30_000 });
    // The editor shows spaces as no-break spaces, a line per element.
    const text = async () =>
      (await page.locator('.graphiql-query-editor .view-lines').first().innerText())
        .replace(/\u00a0/g, ' ')
        .trim();
    // It opens on a query that runs (the gateway's default: graphql/introspection.test.ts runs it).
    await expect.poll(text, { timeout: 15_000 }).toContain('signedUrl');
    // Replaced by typing, until it holds exactly the new query: a select-all pressed before the
    // editor has taken focus selects nothing, and the new text would land inside the old query.
    await expect
      .poll(
        async () => {
          await editor.click();
          await page.keyboard.press('ControlOrMeta+A');
          await page.keyboard.press('Delete');
          // insertText, not type: typing `{` would have the editor close the brace itself.
          await page.keyboard.insertText('{ viewer { id } }');
          return text();
        },
        { timeout: 15_000 },
      )
      .toBe('{ viewer { id } }');
    const answered = page.waitForResponse(
      (r) =>
        r.url() === `${gateway.url}/graphql` &&
        r.request().method() === 'POST' &&
        (r.request().postData() ?? '').includes('viewer'),
    );
    await page.getByRole('button', { name: /^Execute query/ }).click();
    expect((await answered).status()).toBe(200);

    // The result pane is an editor too: it shows spaces as no-break spaces.
    const shown = async () => (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');
    await expect.poll(shown, { timeout: 15_000 }).toContain('"id": "demo"');
    expect(JSON.parse(await shown())).toEqual({ data: { viewer: { id: 'demo' } } });
    await screenshot(page, 'graphiql');

    expect(elsewhere).toEqual([]);
    expect(failed).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});
