import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page, type Request } from 'playwright-core';

export const SCREENSHOTS = fileURLToPath(new URL('../screenshots', import.meta.url));

/** Debian's Chromium, headless. A missing browser fails loudly (apt-get install chromium). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.waitForTimeout(250); // let fade-ins finish: the picture a person would see
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

export interface GraphqlCall {
  operationName: string | undefined;
  stream: boolean;
  request: Request;
  /** The JSON answer (not for SSE streams, which stay open). */
  response: Promise<unknown>;
}

/** Every GraphQL request the page makes, with its answer. */
export function recordGraphql(page: Page): GraphqlCall[] {
  const calls: GraphqlCall[] = [];
  page.on('request', (request) => {
    if (!request.url().endsWith('/graphql') || request.method() !== 'POST') return;
    const headers = request.headers();
    const stream = (headers['accept'] ?? '').includes('text/event-stream');
    let operationName: string | undefined;
    try {
      operationName = (request.postDataJSON() as { operationName?: string } | null)?.operationName;
    } catch {
      operationName = undefined; // multipart upload
    }
    const response = stream
      ? Promise.resolve(undefined)
      : request
          .response()
          .then((r) => r?.json())
          .catch(() => undefined);
    calls.push({ operationName, stream, request, response });
  });
  return calls;
}

/**
 * What the page's Content-Security-Policy refused (Chromium reports each refusal on the console),
 * so a test can show the app works whole under the policy the gateway sends it.
 */
export function recordCspViolations(page: Page): string[] {
  const refused: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && m.text().includes('Content Security Policy')) refused.push(m.text());
  });
  return refused;
}

/** Requests for image bytes (signed bucket URLs and proxy links). */
export function recordImageRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request) => {
    const u = request.url();
    if (u.includes('/local-bucket/') || u.includes('/proxy/')) urls.push(u);
  });
  return urls;
}

export interface ImageState {
  id: string;
  state: string;
  source: string;
  src: string | null;
  complete: boolean;
  naturalWidth: number;
  top: number;
}

/** What every SmartImage on the page shows right now. */
export function imageStates(page: Page): Promise<ImageState[]> {
  return page.$$eval('.smart-image', (els) =>
    els.map((el) => {
      const img = el.querySelector('img');
      const h = el as HTMLElement;
      return {
        id: h.dataset['imageId'] ?? '',
        state: h.dataset['state'] ?? '',
        source: h.dataset['source'] ?? '',
        src: img?.getAttribute('src') ?? null,
        complete: img?.complete ?? false,
        naturalWidth: img?.naturalWidth ?? 0,
        top: el.getBoundingClientRect().top,
      };
    }),
  );
}

/** Resolves once every image in the viewport (but `except`) is loaded. */
export async function waitForVisibleLoaded(page: Page, timeoutMs = 30_000, except = ''): Promise<void> {
  await page.waitForFunction(
    (skip) =>
      [...document.querySelectorAll<HTMLElement>('.smart-image')]
        .filter((el) => {
          const r = el.getBoundingClientRect();
          return r.bottom > 0 && r.top < window.innerHeight && r.width > 0 && el.dataset['imageId'] !== skip;
        })
        .every((el) => {
          const img = el.querySelector('img');
          return el.dataset['state'] === 'loaded' && img !== null && img.complete && img.naturalWidth > 0;
        }),
    except,
    { timeout: timeoutMs, polling: 100 },
  );
}

/** Scrolls the page a viewport at a time to the end, letting each screenful load. */
export async function scrollThrough(page: Page): Promise<void> {
  for (;;) {
    await waitForVisibleLoaded(page);
    const done = await page.evaluate(() => {
      const end = document.documentElement.scrollHeight - window.innerHeight;
      if (window.scrollY >= end - 1) return true;
      window.scrollBy(0, window.innerHeight * 0.9);
      return false;
    });
    if (done) return;
  }
}
