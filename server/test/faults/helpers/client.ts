import type { Outcome } from './load.js';
import type { Stack } from './stack.js';

export const PAGE = /* GraphQL */ `
  query Page($first: Int!, $after: String) {
    images(first: $first, after: $after) {
      edges { node { id key signedUrl { url expiresAt cached } stream: proxyUrl(mode: STREAM) redirect: proxyUrl } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

interface PageData {
  images: {
    edges: {
      node: {
        id: string;
        key: string;
        signedUrl: { url: string; expiresAt: string; cached: boolean };
        /** A link's token grants one mode: each mode has its own link. */
        stream: string;
        redirect: string;
      };
    }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

interface GqlBody {
  data?: PageData | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** No request of the load may hang the test: past this it counts as a failure. */
const REQUEST_TIMEOUT_MS = 20_000;

/**
 * How long after an image's step begins a page may still sign its new URL on a healthy cache:
 * the first page asking writes it back and the sweep runs every second, so this is generous.
 */
const STEP_TURN_GRACE_MS = 10_000;

/** Per phase: URLs handed out with `cached: false`, and what the origin said when each was opened. */
export interface UncachedCheck {
  /** Handed out (one per image per page; the same URL may be handed out more than once). */
  handedOut: number;
  /** Different URLs among them (one key and one signing second give one URL). */
  distinct: number;
  /** Opened at the origin: 200 with the object's bytes. */
  opened: number;
  refused: { url: string; status: number; detail: string }[];
}

/**
 * The requests a browser makes, each judged strictly: a page is ok only when every image on it
 * has a URL of the fixture's that lives long enough. Page requests walk the pages in turn.
 */
export class Client {
  /** `after` of each page, found by `discover()`. */
  private afters: (string | null)[] = [null];
  private pageCount = 0;
  private next = 0;
  private resigned = 0;
  /** The latest URL handed out, for checks that the origin accepts what was signed. */
  lastUrl: string | undefined;
  /**
   * Every URL a page handed out with `cached: false` (signed for that request, not read from the
   * cache), with its object key and every phase it was handed out in; `openUncached()` opens
   * each one at the origin.
   */
  private readonly uncached = new Map<string, { key: string; phases: Set<string> }>();
  private readonly uncachedHandedOut = new Map<string, number>();
  /** The phase the load is in (a test running a SteadyLoad sets `() => load.current`). */
  phase: () => string = () => 'all';
  /** Stream-mode proxy links (path and query) and object keys by image id, from the first walk. */
  readonly proxyPaths = new Map<string, { stream: string; redirect: string; key: string }>();

  /**
   * @param minLifeMs the least life a handed-out URL may have left (the default minTtl is 300 s,
   * or a quarter of URL_TTL_SECONDS when that is shorter; a little is allowed for the trip).
   */
  constructor(
    private readonly stack: Stack,
    readonly first = 24,
    private readonly minLifeMs = 290_000,
  ) {}

  /** Walks every page once (warming the cache) and keeps the cursors. */
  async discover(): Promise<void> {
    this.afters = [];
    let after: string | null = null;
    for (;;) {
      this.afters.push(after);
      const body = await this.post(after);
      if (body.errors || !body.data) throw new Error(`discovery failed: ${JSON.stringify(body.errors)}`);
      for (const e of body.data.images.edges) {
        const stream = new URL(e.node.stream);
        const redirect = new URL(e.node.redirect);
        this.proxyPaths.set(e.node.id, {
          stream: `${stream.pathname}${stream.search}`,
          redirect: `${redirect.pathname}${redirect.search}`,
          key: e.node.key,
        });
      }
      if (!body.data.images.pageInfo.hasNextPage) break;
      after = body.data.images.pageInfo.endCursor;
    }
    this.pageCount = this.afters.length;
  }

  /** One page query of the rotation. */
  page = async (): Promise<Outcome> => {
    const i = this.next++ % Math.max(1, this.pageCount);
    const expected = Math.min(this.first, this.stack.ids.length - i * this.first);
    const res = await fetch(`${this.stack.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.stack.token}` },
      body: JSON.stringify({ query: PAGE, variables: { first: this.first, after: this.afters[i] ?? null } }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json()) as GqlBody;
    if (body.errors?.length) {
      const codes = [...new Set(body.errors.map((e) => e.extensions?.code ?? e.message))];
      return { ok: false, status: res.status, detail: codes.join(',') };
    }
    const edges = body.data?.images.edges ?? [];
    if (res.status !== 200 || edges.length !== expected)
      return { ok: false, status: res.status, detail: `${edges.length} of ${expected} images` };
    const now = Date.now();
    for (const e of edges) {
      const s = e.node.signedUrl;
      if (!s.url.startsWith(`${this.stack.fixture.url}/`))
        return { ok: false, status: res.status, detail: 'foreign url' };
      // Never a URL about to die.
      if (Date.parse(s.expiresAt) - now < this.minLifeMs)
        return { ok: false, status: res.status, detail: 'short url' };
    }
    this.lastUrl = edges[edges.length - 1]!.node.signedUrl.url;
    const phase = this.phase();
    for (const e of edges) {
      if (e.node.signedUrl.cached) continue;
      this.uncachedHandedOut.set(phase, (this.uncachedHandedOut.get(phase) ?? 0) + 1);
      // Per phase: on the window grid a URL signed without the cache in one phase is the very
      // same string when signed without it again in a later one (same image, same step).
      const seen = this.uncached.get(e.node.signedUrl.url);
      if (seen) seen.phases.add(phase);
      else this.uncached.set(e.node.signedUrl.url, { key: e.node.key, phases: new Set([phase]) });
    }
    const hits = edges.filter((e) => e.node.signedUrl.cached).length;
    const stepTurns = edges.filter(
      (e) => !e.node.signedUrl.cached && this.stepJustTurned(e.node.signedUrl, now),
    ).length;
    return {
      ok: true,
      status: res.status,
      cached: hits + stepTurns === edges.length,
      hits,
      urls: edges.length,
    };
  };

  /**
   * Was this URL signed because its image's step had just begun? Each image's URL changes at its
   * own moment of the window grid (one image in sixteen every ~3 minutes with the default TTL);
   * until the first request or the refresh sweep re-signs it, the cache holds the previous step's
   * URL, so a page then gets `cached: false` on a healthy cache. A grid URL expires TTL after its
   * step began (these pages never ask for more life than a step's URL has, so none is off the
   * grid). Anything else uncached is a miss the fault caused.
   */
  private stepJustTurned(s: { expiresAt: string }, now: number): boolean {
    const stepStartedAt = Date.parse(s.expiresAt) - this.urlTtlMs;
    return now - stepStartedAt >= 0 && now - stepStartedAt < STEP_TURN_GRACE_MS;
  }

  private get urlTtlMs(): number {
    return Number(this.stack.env.URL_TTL_SECONDS ?? 3600) * 1000;
  }

  /**
   * `refreshSignedUrls` for a few images in turn, as a client that saw a load error asks: the
   * step's URL of each, signed again or, when the cache has it already, handed back from there.
   */
  resign = async (): Promise<Outcome> => {
    const at = (this.resigned++ * 4) % (this.stack.ids.length - 4);
    const ids = this.stack.ids.slice(at, at + 4);
    const res = await fetch(`${this.stack.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.stack.token}` },
      body: JSON.stringify({
        query: 'mutation ($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url cached } }',
        variables: { ids },
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json()) as {
      data?: { refreshSignedUrls: ({ url: string; cached: boolean } | null)[] };
      errors?: { extensions?: { code?: string }; message: string }[];
    };
    if (body.errors?.length)
      return {
        ok: false,
        status: res.status,
        detail: body.errors[0]!.extensions?.code ?? body.errors[0]!.message,
      };
    const urls = body.data?.refreshSignedUrls ?? [];
    const good = urls.filter((u) => u?.url.startsWith(`${this.stack.fixture.url}/`));
    if (good.length !== ids.length)
      return { ok: false, status: res.status, detail: `${good.length} of ${ids.length}` };
    return { ok: true, status: res.status };
  };

  /** Fetches the latest signed URL from the origin: what was signed must be accepted. */
  signedUrl = async (): Promise<Outcome> => {
    if (!this.lastUrl) return { ok: true, status: 0, detail: 'nothing yet' };
    const res = await fetch(this.lastUrl, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await res.arrayBuffer();
    return res.status === 200
      ? { ok: true, status: 200 }
      : { ok: false, status: res.status, detail: 'refused' };
  };

  /**
   * Opens every distinct URL handed out with `cached: false` so far at the origin (after the load,
   * so the check adds nothing to it; the URLs live for the whole TTL) and checks the bytes are the
   * object's. By phase: a URL handed out in several phases counts in each of them.
   */
  async openUncached(concurrency = 8): Promise<Record<string, UncachedCheck>> {
    const out: Record<string, UncachedCheck> = {};
    const of = (phase: string) => {
      out[phase] ??= {
        handedOut: this.uncachedHandedOut.get(phase) ?? 0,
        distinct: 0,
        opened: 0,
        refused: [],
      };
      return out[phase];
    };
    const queue = [...this.uncached];
    for (const [, { phases }] of queue) for (const phase of phases) of(phase).distinct++;
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [url, { key, phases }] = next;
        const rs = [...phases].map(of);
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
          const body = Buffer.from(await res.arrayBuffer());
          for (const r of rs) {
            if (res.status !== 200) r.refused.push({ url, status: res.status, detail: 'refused' });
            else if (!this.stack.fixture.objects.get(key)?.body.equals(body))
              r.refused.push({ url, status: 200, detail: 'wrong bytes' });
            else r.opened++;
          }
        } catch (err) {
          for (const r of rs) r.refused.push({ url, status: 0, detail: (err as Error).message });
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return out;
  }

  /** `/proxy/:id` in stream mode (bytes through the gateway) or redirect mode (302). */
  proxy(mode: 'stream' | 'redirect') {
    let n = 0;
    return async (): Promise<Outcome> => {
      const all = [...this.proxyPaths.values()];
      const { key, ...links } = all[n++ % all.length]!;
      const path = links[mode];
      const res = await fetch(`${this.stack.url}${path}`, {
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = Buffer.from(await res.arrayBuffer());
      const retryAfter = res.headers.get('retry-after');
      if (mode === 'redirect') {
        const loc = res.headers.get('location') ?? '';
        if (res.status === 302 && loc.startsWith(`${this.stack.fixture.url}/`))
          return { ok: true, status: 302 };
      } else if (res.status === 200) {
        const want = this.stack.fixture.objects.get(key);
        if (want?.body.equals(body)) return { ok: true, status: 200 };
        return { ok: false, status: 200, detail: 'wrong bytes' };
      }
      return {
        ok: false,
        status: res.status,
        detail: `${res.status}${retryAfter ? ` retry-after=${retryAfter}` : ''}`,
      };
    };
  }

  /** `/readyz`: status code plus what it says about each dependency. */
  readyz = async (): Promise<Outcome> => {
    const res = await fetch(`${this.stack.url}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await res.json()) as {
      status: string;
      checks: { database: string; cache: { state: string }; storage: { state: string } };
    };
    const c = body.checks;
    return {
      ok: res.status === 200,
      status: res.status,
      detail: `${body.status} db=${c.database} cache=${c.cache.state} storage=${c.storage.state}`,
    };
  };

  private async post(after: string | null): Promise<GqlBody> {
    const res = await fetch(`${this.stack.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.stack.token}` },
      body: JSON.stringify({ query: PAGE, variables: { first: this.first, after } }),
    });
    return (await res.json()) as GqlBody;
  }
}

/** One line per phase for the test output (docs/reliability.md takes its numbers from these). */
export function reportUncached(checks: Record<string, UncachedCheck>, phases: string[]): void {
  const lines = [
    '[faults]   URLs handed out with cached: false, each distinct one opened at the origin after the load',
  ];
  let all: UncachedCheck = { handedOut: 0, distinct: 0, opened: 0, refused: [] };
  for (const phase of phases) {
    const c = checks[phase];
    if (!c) continue;
    lines.push(
      `  uncached   ${phase.padEnd(10)} handed out=${c.handedOut} distinct=${c.distinct} opened 200 with the right bytes=${c.opened} refused=${c.refused.length}`,
    );
    all = {
      handedOut: all.handedOut + c.handedOut,
      distinct: all.distinct + c.distinct,
      opened: all.opened + c.opened,
      refused: [...all.refused, ...c.refused],
    };
  }
  lines.push(
    `  uncached   ${'summed'.padEnd(10)} handed out=${all.handedOut} distinct=${all.distinct} opened 200 with the right bytes=${all.opened} refused=${all.refused.length}`,
  );
  console.log(lines.join('\n'));
}
