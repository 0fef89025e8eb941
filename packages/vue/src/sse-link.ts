import { ApolloLink, type FetchResult, Observable, type Operation } from '@apollo/client/core/index.js';
import { print } from 'graphql';

export interface SseLinkOptions {
  uri: string;
  /** Headers for each request (auth); read per request so a new token is picked up. */
  headers?: () => Record<string, string>;
  fetch?: typeof fetch;
  /**
   * A stream that brings no byte for this long has gone silent (a proxy or NAT dropped it
   * without closing, a laptop slept): it is aborted and reported as an error, so the caller
   * reconnects. The gateway pings every 12 s; default 45 s (three pings and a margin).
   */
  idleMs?: number;
}

const DEFAULT_IDLE_MS = 45_000;

interface SseMessage {
  event: string;
  data: string;
}

/** One `event:`/`data:` block of a text/event-stream (comment lines are keep-alives). */
function parseBlock(block: string): SseMessage {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}

/**
 * GraphQL subscriptions over graphql-yoga's SSE transport (one POST with
 * `accept: text/event-stream` per operation). Unsubscribing aborts the request, which is how the
 * server learns to stop; a stream that ends or fails is reported to the caller, who decides on
 * reconnecting (useUrlRefresh does, with backoff and a refetch).
 */
export class SseLink extends ApolloLink {
  constructor(private readonly options: SseLinkOptions) {
    super();
  }

  override request(operation: Operation): Observable<FetchResult> {
    return new Observable<FetchResult>((observer) => {
      const abort = new AbortController();
      const doFetch = this.options.fetch ?? globalThis.fetch.bind(globalThis);
      // Without a watchdog a half-open connection would wait for bytes for good, and the page's
      // URLs would run out with nobody told (the gateway's pings are what keeps it re-armed).
      const idleMs = this.options.idleMs ?? DEFAULT_IDLE_MS;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      const rearm = () => {
        if (watchdog !== undefined) clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          abort.abort();
          observer.error(new Error(`Subscription stream silent for ${idleMs} ms`));
        }, idleMs);
      };
      const disarm = () => {
        if (watchdog !== undefined) clearTimeout(watchdog);
        watchdog = undefined;
      };
      const run = async () => {
        rearm(); // the answer's headers are awaited under the same limit
        const res = await doFetch(this.options.uri, {
          method: 'POST',
          signal: abort.signal,
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            ...this.options.headers?.(),
          },
          body: JSON.stringify({
            query: print(operation.query),
            variables: operation.variables,
            operationName: operation.operationName,
          }),
        });
        const type = res.headers.get('content-type') ?? '';
        if (!type.includes('text/event-stream')) {
          // The server refused before streaming (validation, auth): one JSON result, then done.
          if (!type.includes('json')) throw new Error(`Subscription failed: HTTP ${res.status}`);
          observer.next((await res.json()) as FetchResult);
          observer.complete();
          return;
        }
        if (!res.body) throw new Error('Subscription response has no body');
        // The server has the subscription: a caller replacing another stream closes that one now
        // (useUrlRefresh: make before break). Passed in the operation's context by the caller.
        (operation.getContext() as { onStreamOpen?: () => void }).onStreamOpen?.();
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          rearm();
          const { value, done } = await reader.read();
          if (done) break;
          // CRLF normalized over the whole buffer: a pair split across two chunks is caught too.
          buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n/g, '\n');
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const message = parseBlock(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (message.event === 'complete') {
              observer.complete();
              return;
            }
            if (message.data) observer.next(JSON.parse(message.data) as FetchResult);
          }
        }
        observer.complete();
      };
      run()
        .catch((err: unknown) => {
          if (!abort.signal.aborted) observer.error(err);
        })
        .finally(disarm);
      return () => {
        disarm();
        abort.abort();
      };
    });
  }
}
