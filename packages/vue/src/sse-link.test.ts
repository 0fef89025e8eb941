import { type ApolloLink, execute, type FetchResult, gql } from '@apollo/client/core';
import { describe, expect, it, vi } from 'vitest';
import { SseLink } from './sse-link';

const SUBSCRIPTION = gql`
  subscription S($ids: [ID!]!) {
    signedUrlRefreshed(ids: $ids) {
      imageId
    }
  }
`;

/** A text/event-stream response delivered in the given chunks (split anywhere, like TCP). */
function streamResponse(chunks: string[], signal?: { aborted: boolean }) {
  const encoder = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (signal?.aborted) return controller.error(new DOMException('aborted', 'AbortError'));
      if (i < chunks.length) controller.enqueue(encoder.encode(chunks[i++]));
      else controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

function run(link: ApolloLink) {
  const results: FetchResult[] = [];
  let completed = false;
  let failed: unknown;
  const sub = execute(link, { query: SUBSCRIPTION, variables: { ids: ['a'] } }).subscribe({
    next: (r) => results.push(r),
    complete: () => {
      completed = true;
    },
    error: (e) => {
      failed = e;
    },
  });
  return { results, sub, done: () => completed, error: () => failed };
}

describe('SseLink', () => {
  it('tells the caller when the server has the subscription (its stream began), and not for a refusal', async () => {
    let answer: (r: Response) => void = () => {};
    const fetch = vi.fn(
      (_url: RequestInfo | URL, _init?: RequestInit) => new Promise<Response>((r) => (answer = r)),
    );
    const link = new SseLink({ uri: '/graphql', fetch });
    const opened: string[] = [];
    const sub = execute(link, {
      query: SUBSCRIPTION,
      variables: { ids: ['a'] },
      context: { onStreamOpen: () => opened.push('open') },
    }).subscribe({});
    await vi.waitFor(() => expect(fetch).toHaveBeenCalledTimes(1));
    expect(opened).toEqual([]); // sent, not answered: the server may not have it yet
    answer(streamResponse([':\n\n']));
    await vi.waitFor(() => expect(opened).toEqual(['open']));
    sub.unsubscribe();

    const refused = vi.fn(async () => Response.json({ errors: [{ message: 'no' }] }, { status: 400 }));
    const refusedOpened: string[] = [];
    execute(new SseLink({ uri: '/graphql', fetch: refused }), {
      query: SUBSCRIPTION,
      variables: { ids: ['a'] },
      context: { onStreamOpen: () => refusedOpened.push('open') },
    }).subscribe({});
    await vi.waitFor(() => expect(refused).toHaveBeenCalledTimes(1));
    await new Promise((r) => setTimeout(r, 10));
    expect(refusedOpened).toEqual([]);
  });

  it('POSTs the operation asking for an event stream and parses events split across chunks', async () => {
    const fetch = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) =>
      streamResponse([
        ':\n\n',
        'event: next\ndata: {"data":{"signedUrlRefreshed":{"imageId":"a"}}}\n',
        '\nevent: next\r\ndata: {"data":{"signedUrlRe',
        'freshed":{"imageId":"b"}}}\r\n\r\nevent: complete\ndata:\n\n',
      ]),
    );
    const link = new SseLink({ uri: '/graphql', fetch, headers: () => ({ authorization: 'Bearer x' }) });
    const r = run(link);
    await vi.waitFor(() => expect(r.done()).toBe(true));
    expect(
      r.results.map(
        (x) => (x.data as { signedUrlRefreshed: { imageId: string } }).signedUrlRefreshed.imageId,
      ),
    ).toEqual(['a', 'b']);

    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('/graphql');
    const headers = init?.headers as Record<string, string>;
    expect(headers['accept']).toBe('text/event-stream');
    expect(headers['authorization']).toBe('Bearer x');
    const body = JSON.parse(String(init?.body));
    expect(body.variables).toEqual({ ids: ['a'] });
    expect(body.operationName).toBe('S');
    expect(body.query).toContain('signedUrlRefreshed(ids: $ids)');
  });

  it('reads a CRLF split across two chunks as one line end', async () => {
    // `event: complete\r` | `\n…`: were the halves normalized apart, the event would be
    // `complete\r` and the stream would run on into the event after it.
    const r = run(
      new SseLink({
        uri: '/graphql',
        fetch: async () =>
          streamResponse([
            'event: complete\r',
            '\ndata:\r\n\r\n',
            'event: next\ndata: {"data":{"signedUrlRefreshed":{"imageId":"late"}}}\n\n',
          ]),
      }),
    );
    await vi.waitFor(() => expect(r.done()).toBe(true));
    expect(r.results).toEqual([]);
  });

  it('reports a stream that ends without `complete` as completed, and a failed request as an error', async () => {
    const ended = run(
      new SseLink({ uri: '/graphql', fetch: async () => streamResponse(['data: {"data":null}\n\n']) }),
    );
    await vi.waitFor(() => expect(ended.done()).toBe(true));

    const refused = run(
      new SseLink({ uri: '/graphql', fetch: async () => new Response('bad gateway', { status: 502 }) }),
    );
    await vi.waitFor(() => expect(refused.error()).toBeInstanceOf(Error));
  });

  it('passes a JSON answer (the server refused before streaming) through and completes', async () => {
    const json = { errors: [{ message: 'nope', extensions: { code: 'UNAUTHENTICATED' } }] };
    const r = run(new SseLink({ uri: '/graphql', fetch: async () => Response.json(json, { status: 200 }) }));
    await vi.waitFor(() => expect(r.done()).toBe(true));
    expect(r.results).toEqual([json]);
  });

  it('aborts the request on unsubscribe and reports nothing after', async () => {
    let signal: AbortSignal | undefined;
    const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
      signal = init?.signal ?? undefined;
      return streamResponse(['data: {"data":{"signedUrlRefreshed":{"imageId":"a"}}}\n\n'], {
        get aborted() {
          return signal?.aborted ?? false;
        },
      });
    });
    const r = run(new SseLink({ uri: '/graphql', fetch }));
    await vi.waitFor(() => expect(r.results).toHaveLength(1));
    r.sub.unsubscribe();
    expect(signal?.aborted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(r.error()).toBeUndefined();
  });

  it('drops a stream that goes silent (no ping for idleMs) as an error, aborting its request', async () => {
    let signal: AbortSignal | undefined;
    const encoder = new TextEncoder();
    const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
      signal = init?.signal ?? undefined;
      // One ping, then nothing and no end: a connection dropped without a FIN.
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(':\n\n'));
          signal?.addEventListener('abort', () =>
            controller.error(new DOMException('aborted', 'AbortError')),
          );
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    });
    const r = run(new SseLink({ uri: '/graphql', fetch, idleMs: 150 }));
    await vi.waitFor(() => expect(r.error()).toBeInstanceOf(Error), { timeout: 2000 });
    expect(String(r.error())).toContain('silent for 150 ms');
    expect(signal?.aborted).toBe(true);
    expect(r.done()).toBe(false);
  });

  it('keeps a stream whose pings keep coming, and fails a request whose answer never comes', async () => {
    const encoder = new TextEncoder();
    let pings = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const pinging = async (_url: RequestInfo | URL, init?: RequestInit) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          timer = setInterval(() => {
            pings++;
            controller.enqueue(encoder.encode(':\n\n'));
          }, 40);
          init?.signal?.addEventListener('abort', () => clearInterval(timer));
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    };
    const kept = run(new SseLink({ uri: '/graphql', fetch: pinging, idleMs: 150 }));
    await new Promise((resolve) => setTimeout(resolve, 600)); // four idle limits
    expect(pings).toBeGreaterThanOrEqual(8);
    expect(kept.error()).toBeUndefined();
    kept.sub.unsubscribe();
    clearInterval(timer);

    let signal: AbortSignal | undefined;
    const hanging = (_url: RequestInfo | URL, init?: RequestInit) => {
      signal = init?.signal ?? undefined;
      return new Promise<Response>(() => {}); // headers never arrive
    };
    const waited = run(new SseLink({ uri: '/graphql', fetch: hanging, idleMs: 150 }));
    await vi.waitFor(() => expect(waited.error()).toBeInstanceOf(Error), { timeout: 2000 });
    expect(signal?.aborted).toBe(true);
  });
});
