import { subtle } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';
import {
  type Coding,
  type CompressionCache,
  createCompressionCache,
  negotiateEncoding,
} from './compression.js';
import { etagMatches } from './range.js';
import { mergeVary } from './vary.js';

/** The GraphiQL page once rendered: its UTF-8 bytes and their validator. */
export interface RenderedGraphiql {
  body: Buffer<ArrayBuffer>;
  /** Weak: one validator for the page whichever coding carries it (If-None-Match compares weakly). */
  etag: string;
}

export interface GraphiqlPage {
  /** yoga's `renderGraphiQL`. */
  render(opts: GraphiQLOptions): Promise<Buffer<ArrayBuffer>>;
  /** The page, once a first view asked for it (undefined before). */
  rendered(): Promise<RenderedGraphiql> | undefined;
  /** The page in `coding`, compressed once (concurrent views share it); undefined if it does not pay. */
  encoded(page: RenderedGraphiql, coding: Coding): Promise<Buffer | undefined>;
}

/**
 * GraphiQL from the bundled renderer: the page carries its scripts, styles and editor workers
 * inline (about 9 MB), so `/graphql` works on a machine without internet access. Yoga's default
 * page loads GraphiQL from a CDN and shows "Loading…" for ever when that is out of reach.
 *
 * The renderer is imported on the first page view, not at start-up: a node with GraphiQL off
 * (production) never loads it, and an API node serving queries does not hold it in memory.
 * The page depends on the options only, so it is rendered once, turned into UTF-8 once (about
 * 30 ms on the first view; yoga encoded its string body again on every view), hashed once
 * (SHA-256 through WebCrypto, which runs on the threadpool) and compressed once per coding
 * (`compression.ts`: 2.44 MB in gzip in ~210 ms, 1.95 MB in br in ~300 ms, both off the event
 * loop). `useGraphiqlPage` answers with those. `cache` is injectable for tests.
 */
export function bundledGraphiql(options: { cache?: CompressionCache } = {}): GraphiqlPage {
  // Its own cache: the page's two codings (about 4.4 MB) neither evict the web app's files nor go.
  const cache = options.cache ?? createCompressionCache({ maxBytes: 16 * 1024 * 1024 });
  let page: Promise<RenderedGraphiql> | undefined;
  return {
    render(opts) {
      page ??= import('@graphql-yoga/render-graphiql').then(async (m) => {
        const body = Buffer.from(m.renderGraphiQL(opts));
        const hash = Buffer.from(await subtle.digest('SHA-256', body)).toString('base64url');
        return { body, etag: `W/"${hash}"` };
      });
      return page.then((p) => p.body);
    },
    rendered: () => page,
    encoded: (p, coding) => cache.get('graphiql', p.etag, coding, async () => p.body),
  };
}

/**
 * The query GraphiQL opens with: one that runs as it is and shows what Signet is for (a page of
 * images with their signed URLs and a variant's). Without it the page opened on yoga's welcome
 * text, all comments, and its run button answered "Syntax Error: Unexpected <EOF>". Anonymous:
 * GraphiQL keeps an operation's name for a moment after the text is replaced, and a query pasted
 * over a named one at once failed with "Cannot infer operation <name>".
 * `graphiql.test.ts` checks it against the schema.
 */
export const GRAPHIQL_DEFAULT_QUERY = `# Signet: images behind expiring signed URLs.
# Run this with the button on the right (Ctrl-Enter).
# With auth on, put {"Authorization": "Bearer <token>"}
# in the Headers tab below. For local testing:
#   npm run signet -- token --sub demo --admin
{
  viewer {
    id
    isAdmin
  }
  images(first: 5) {
    totalCount
    edges {
      node {
        id
        width
        height
        signedUrl {
          url
          expiresAt
        }
        thumb: signedUrl(preset: "thumb") {
          url
        }
      }
    }
  }
}
`;

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

/**
 * The HTML page yoga answers a browser's GET /graphql with (and nothing else: with the landing
 * page off, it is yoga's only HTML), once yoga's GraphiQL plugin rendered it: its security
 * headers, then the page in the coding the request accepts (`Vary: Accept-Encoding`), or a 304
 * when `If-None-Match` holds its ETag. `no-cache`: a browser keeps the page and revalidates it on
 * each visit, 9 MB downloaded again only when the page changed (a new GraphiQL, other options).
 * yoga's own Response is replaced, its other headers (CORS) kept; a `Vary` the HTTP layer set on
 * the node response (`Origin`, with CORS_ORIGINS) is kept in ours, which would replace it.
 */
export function useGraphiqlPage(page: GraphiqlPage): Plugin {
  return {
    async onResponse({ request, response, setResponse, fetchAPI, serverContext }) {
      if (!response.headers.get('content-type')?.startsWith('text/html')) return;
      response.headers.set('content-security-policy', GRAPHIQL_CSP);
      response.headers.set('x-content-type-options', 'nosniff');
      response.headers.set('referrer-policy', 'no-referrer');
      const rendered = page.rendered();
      if (!rendered || response.status !== 200) {
        response.headers.set('cache-control', 'no-store');
        return;
      }
      const p = await rendered;
      // A new set, names in lower case: the ponyfill's Headers copied from another keep the
      // names' case, and its delete('content-type') then misses yoga's 'Content-Type'.
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        headers[name.toLowerCase()] = value;
      });
      delete headers['content-type'];
      delete headers['content-length'];
      delete headers['content-encoding'];
      const nodeVary = (serverContext as { res?: ServerResponse }).res?.getHeader('vary');
      headers.vary = mergeVary([nodeVary, headers.vary], 'Accept-Encoding');
      headers['cache-control'] = 'no-cache';
      headers.etag = p.etag;
      if (etagMatches(request.headers.get('if-none-match'), p.etag)) {
        // A 304 carries the 200's validators and caching headers, not its body's length or type.
        setResponse(new fetchAPI.Response(null, { status: 304, headers }));
        return;
      }
      const coding = negotiateEncoding(request.headers.get('accept-encoding'));
      const encoded =
        coding === 'identity' ? undefined : await page.encoded(p, coding).catch(() => undefined);
      headers['content-type'] = 'text/html; charset=utf-8';
      headers['content-length'] = String((encoded ?? p.body).length);
      if (encoded) headers['content-encoding'] = coding;
      // zlib's output is a plain ArrayBuffer's view, as the Response type wants (not a SharedArrayBuffer's).
      const body = (encoded as Buffer<ArrayBuffer> | undefined) ?? p.body;
      setResponse(new fetchAPI.Response(body, { status: 200, headers }));
    },
  };
}
