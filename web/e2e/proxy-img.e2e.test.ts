import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './helpers/browser';
import { Gateway } from './helpers/gateway';

describe('plain <img src=proxyUrl>', () => {
  let gateway: Gateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await Gateway.start({ SEED_DEMO: 'true', SEED_DEMO_COUNT: '2' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('renders in a page that runs no script, in redirect and in stream mode', async () => {
    const data = await gateway.graphql<{
      images: {
        edges: { node: { id: string; width: number; height: number; redirect: string; stream: string } }[];
      };
    }>(
      '{ images(first: 1) { edges { node { id width height redirect: proxyUrl stream: proxyUrl(mode: STREAM) } } } }',
    );
    const { redirect, stream, width, height } = data.images.edges[0]!.node;

    // A static page elsewhere (another origin, scripts off): all it has is the capability link.
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const answers: { url: string; status: number }[] = [];
    page.on('response', (r) => answers.push({ url: r.url(), status: r.status() }));
    await page.setContent(
      `<!doctype html><title>Embed</title>
       <img id="redirect" src="${redirect}" alt="via redirect">
       <img id="stream" src="${stream}" alt="streamed">`,
      { waitUntil: 'load' },
    );
    for (const id of ['redirect', 'stream']) {
      const size = await page.$eval(`#${id}`, (img) => {
        const i = img as HTMLImageElement;
        return { complete: i.complete, width: i.naturalWidth, height: i.naturalHeight };
      });
      expect(size, id).toEqual({ complete: true, width, height });
    }
    // Redirect mode answered 302 to a signed bucket URL; stream mode sent the bytes itself.
    expect(answers.find((a) => a.url === redirect)?.status).toBe(302);
    expect(answers.some((a) => a.url.includes('/local-bucket/') && a.status === 200)).toBe(true);
    expect(answers.find((a) => a.url === stream)?.status).toBe(200);
    await context.close();
  });
});
