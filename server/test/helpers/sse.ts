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
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
        signal: ac.signal,
      });
      if (!res.ok || !res.body) throw new Error(`subscription failed: HTTP ${res.status}`);
      opened();
      const decoder = new TextDecoder();
      let buf = '';
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n');
          if (data) events.push({ at: Date.now(), data: JSON.parse(data) as T });
          i = buf.indexOf('\n\n');
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
