import type { GraphiQLOptions, Plugin } from 'graphql-yoga';

/**
 * GraphiQL from the bundled renderer: the page carries its scripts, styles and editor workers
 * inline (about 9 MB), so `/graphql` works on a machine without internet access. Yoga's default
 * page loads GraphiQL from a CDN and shows "Loading…" for ever when that is out of reach.
 *
 * The renderer is imported on the first page view, not at start-up: a node with GraphiQL off
 * (production) never loads it, and an API node serving queries does not hold it in memory.
 * The page depends on the options only, so it is rendered once.
 */
export function bundledGraphiql(): (opts: GraphiQLOptions) => Promise<string> {
  let page: Promise<string> | undefined;
  return (opts) => {
    page ??= import('@graphql-yoga/render-graphiql').then((m) => m.renderGraphiQL(opts));
    return page;
  };
}

/**
 * What the GraphiQL page may load: itself and this origin, nothing else. Its script and styles
 * are inline, its editor workers are blob: URLs made from inline text, and its icons are data:
 * URLs. Connecting to this origin only keeps a page served here from being turned against
 * another host. `unsafe-eval` is not granted: the bundle does not need it.
 */
export const GRAPHIQL_CSP = [
  "default-src 'none'",
  "script-src 'unsafe-inline' blob:",
  'worker-src blob:',
  "style-src 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers for the HTML page yoga answers a browser's GET /graphql with (and nothing else). */
export function useGraphiqlHeaders(): Plugin {
  return {
    onResponse({ response }) {
      if (!response.headers.get('content-type')?.startsWith('text/html')) return;
      response.headers.set('content-security-policy', GRAPHIQL_CSP);
      response.headers.set('x-content-type-options', 'nosniff');
      response.headers.set('referrer-policy', 'no-referrer');
      response.headers.set('cache-control', 'no-store');
    },
  };
}
