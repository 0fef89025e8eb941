/** One server-sent event: its type (`message` when the server names none) and its data lines joined. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * The text/event-stream format, fed chunk by chunk: events end at a blank line, comment lines
 * (`:` — graphql-yoga's keep-alive pings) are skipped, `event:` names the type, `data:` lines are
 * joined with newlines. Blocks that are only comments are no event at all.
 */
export class SseParser {
  private buf = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array): SseEvent[] {
    this.buf += this.decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    const out: SseEvent[] = [];
    let end = this.buf.indexOf('\n\n');
    while (end >= 0) {
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      let event = '';
      const data: string[] = [];
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        fields++;
        if (name === 'event') event = value;
        else if (name === 'data') data.push(value);
      }
      if (fields > 0) out.push({ event: event || 'message', data: data.join('\n') });
      end = this.buf.indexOf('\n\n');
    }
    return out;
  }
}

/** What an SSE response said within a bounded time. */
export interface SseRead {
  events: SseEvent[];
  /** The server ended the stream (as opposed to the time running out or the caller aborting). */
  ended: boolean;
}

/**
 * Reads a text/event-stream response in the background: `events` fills as they arrive, `done`
 * settles when the server ends the stream, the read is cancelled, or `maxMs` has passed (then
 * `ended` is false). Never rejects.
 */
export function readSse(
  res: Response,
  maxMs: number,
): { events: SseEvent[]; done: Promise<SseRead>; cancel(): void } {
  const events: SseEvent[] = [];
  const reader = res.body!.getReader();
  const parser = new SseParser();
  let stopped = false;
  const cancel = () => {
    stopped = true;
    reader.cancel().catch(() => {});
  };
  const timer = setTimeout(cancel, maxMs);
  const done = (async (): Promise<SseRead> => {
    try {
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) return { events, ended: !stopped };
        events.push(...parser.push(value));
      }
    } catch {
      return { events, ended: false };
    } finally {
      clearTimeout(timer);
    }
  })();
  return { events, done, cancel };
}

/** A GraphQL subscription over SSE (graphql-yoga's distinct-connection mode), collected as it arrives. */
export interface SseSubscription<T> {
  events: { at: number; data: T }[];
  /** Resolves once the response headers arrived (the server has the subscription). */
  opened: Promise<void>;
  /** Waits until `predicate` holds over the events collected so far. */
  waitFor(predicate: (events: { at: number; data: T }[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
  /** Settles when the stream ends (server closed it, or close()). */
  ended: Promise<void>;
}

/** A GraphQL subscription over SSE, as a browser opens it; the caller reads the stream (or does not). */
export function postSubscription(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
  signal?: AbortSignal,
): Promise<Response> {
  return postSseBody(url, { query, variables }, { token, signal });
}

/** Any JSON body posted for text/event-stream (`contentType`: as the client spells it). */
export function postSseBody(
  url: string,
  body: unknown,
  o: { token?: string | undefined; signal?: AbortSignal | undefined; contentType?: string } = {},
): Promise<Response> {
  return fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': o.contentType ?? 'application/json',
      accept: 'text/event-stream',
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    },
    body: JSON.stringify(body),
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

export function subscribeSse<T>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): SseSubscription<T> {
  const ac = new AbortController();
  const events: { at: number; data: T }[] = [];
  let opened!: () => void;
  let failed!: (err: unknown) => void;
  const openedP = new Promise<void>((res, rej) => {
    opened = res;
    failed = rej;
  });
  const ended = (async () => {
    try {
      const res = await postSubscription(url, query, variables, token, ac.signal);
      if (!res.ok || !res.body) throw new Error(`subscription failed: HTTP ${res.status}`);
      opened();
      const parser = new SseParser();
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const e of parser.push(value)) {
          if (e.data) events.push({ at: Date.now(), data: JSON.parse(e.data) as T });
        }
      }
    } catch (err) {
      failed(err);
      if ((err as Error).name !== 'AbortError') throw err;
    }
  })().catch(() => {});
  return {
    events,
    opened: openedP,
    ended,
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline)
          throw new Error(`SSE condition not met in ${timeoutMs} ms (${events.length} events)`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => ac.abort(),
  };
}
