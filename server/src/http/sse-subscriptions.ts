import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendNodeResponse } from '@whatwg-node/server';
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionResult,
  execute,
  type GraphQLError,
  type GraphQLSchema,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Authenticate } from '../auth/viewer.js';
import { requestIdOf } from '../lib/request-id.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type Context, contextOf, type SchemaServices } from '../schema/context.js';
import type { ErrorMask } from './error-mask.js';
import { nestingGuard } from './plugins/use-body-limit.js';
import type { CompiledOperations } from './plugins/use-compiled-execution.js';
import { costRefusal } from './plugins/use-cost-limit.js';
import { type AbortWaiters, endOnAbort } from './plugins/use-end-on-shutdown.js';

/**
 * Subscriptions over SSE without yoga's per-request machinery, for the requests yoga has already
 * accepted once (docs/architecture.md, "HTTP and GraphQL"). Opening one through yoga cost ~1 ms of
 * CPU and ~26 KiB held per subscription (a web Request and Response, a ReadableStream, envelop's
 * wrappers; docs/benchmarks.md, scenario 9); a client reconnect storm is thousands of them.
 *
 * The rule that keeps it honest: this path decides nothing. A request body it has not seen yoga
 * accept as an open subscription (the same document text, operation name, extensions and
 * everything else but the variables) is handed to yoga whole, and so is any request whose
 * viewer, variables, cost or subscription resolver fails here: yoga runs it again and answers
 * with its own error. What depends only on the body (parsing, validation, the query limits,
 * introspection, persisted documents) was yoga's decision for that body; what depends on the
 * request is redone here the same way: the viewer (`authenticate`), the cost with these
 * variables (`costRefusal`), the subscription's resolver (visibility, per-viewer limits), events
 * executed as yoga's pipeline executes them (`CompiledOperations`), errors masked by the same
 * function, the shutdown ending every stream (`endOnAbort`). Headers only (no body read) decide
 * whether a request may come here: a POST of JSON asking for text/event-stream, within the body
 * limit, and no `Origin` when CORS is configured (yoga's CORS headers stay yoga's).
 */
export interface SseSubscriptions {
  /** From the headers alone: may this request take the fast path? */
  eligible(req: IncomingMessage): boolean;
  /** Serves an eligible request (here, or by handing it to yoga). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Recorder of what yoga accepted: the last of yoga's plugins. */
  plugin: Plugin;
  /** Stops the keep-alive timer. */
  close(): void;
}

export interface SseSubscriptionDeps {
  schema: GraphQLSchema;
  services: SchemaServices;
  authenticate: Authenticate;
  logger: Logger;
  metrics: Pick<Metrics, 'sseOpened'>;
  /** yoga, to hand requests to (its fetch API and server adapter). */
  yoga: {
    fetchAPI: { Request: typeof Request };
    handleRequest(
      request: Request,
      serverContext: { req: IncomingMessage; res: ServerResponse },
    ): Promise<Response> | Response;
  };
  maxBodyBytes: number;
  /** CORS is configured: a request with an Origin goes to yoga (which writes the CORS headers). */
  cors: boolean;
  /** Events compiled as yoga's pipeline compiles them (GRAPHQL_JIT), or interpreted. */
  compiled: CompiledOperations | undefined;
  /** The errors of an event, as yoga's mask shows them (and reports them: error-mask.ts). */
  errors: ErrorMask;
  shutdown: { signal: AbortSignal; waiters: AbortWaiters } | undefined;
}

/** What yoga accepted for a request body: the parsed document and operation. */
interface Accepted {
  document: DocumentNode;
  operationName: string | undefined;
}

/**
 * Distinct subscription documents are a handful (an app's operations): a small bound, and a body
 * larger than an operation ever is (any extensions are part of it) is not remembered at all.
 */
const MAX_ACCEPTED = 256;
const MAX_KEY_CHARS = 16 * 1024;

/**
 * yoga's SSE pings (`:` comment lines): at once, so a browser sees the headers, and every 12 s
 * (300 ms when NODE_ENV=test, as yoga does, so tests of both paths see the same stream).
 */
const PING_MS = process.env.NODE_ENV === 'test' ? 300 : 12_000;

/** yoga's SSE headers (graphql-yoga's result-processor/sse.js). */
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  connection: 'keep-alive',
  'cache-control': 'no-cache',
  'content-encoding': 'none',
};

export function createSseSubscriptions(d: SseSubscriptionDeps): SseSubscriptions {
  const accepted = new Map<string, Accepted>();
  const opened = { yoga: d.metrics.sseOpened.labels('yoga'), fast: d.metrics.sseOpened.labels('fast') };
  /** Requests handed to yoga, with the key of their body: recorded if yoga opens them. */
  const handedOver = new WeakMap<Request, string>();
  const streams = new Set<ServerResponse>();
  const ping = setInterval(() => {
    // As yoga: no ping into a stream whose client is not reading (its backlog is the stall guard's).
    for (const res of streams) if (!res.writableNeedDrain) res.write(':\n\n');
  }, PING_MS);
  ping.unref();

  const plugin: Plugin = {
    onSubscribe: ({ args }) => ({
      onSubscribeResult({ result }) {
        if (!isAsyncIterable(result)) return;
        opened.yoga.inc();
        const key = handedOver.get((args.contextValue as { request: Request }).request);
        if (key === undefined) return;
        if (key.length > MAX_KEY_CHARS || accepted.has(key)) return;
        if (accepted.size >= MAX_ACCEPTED) accepted.clear();
        accepted.set(key, { document: args.document, operationName: args.operationName ?? undefined });
      },
    }),
  };

  /** yoga serves the request from its body (read here already); an opened subscription is recorded. */
  async function handOver(req: IncomingMessage, res: ServerResponse, body: string, key?: string) {
    // The headers as yoga's node adapter takes them (node's parsed headers: a repeated
    // Authorization is the first one, not a joined list).
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else if (value !== undefined) headers.set(name, value);
    }
    // The client going away ends yoga's stream, as it does for a request yoga reads itself.
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const request = new d.yoga.fetchAPI.Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, {
      method: 'POST',
      headers,
      body,
      signal: gone.signal,
    });
    if (key !== undefined) handedOver.set(request, key);
    // handleRequest, not fetch: fetch rejects as soon as the signal aborts and drops the answer
    // still on its way, whose subscription nobody would then end.
    const response = await d.yoga.handleRequest(request, { req, res });
    if (res.destroyed) {
      // The client left before the answer: a stream yoga opened for it is cancelled (ended).
      await response.body?.cancel().catch(() => {});
      return;
    }
    // As yoga's own node adapter sends its responses (one writeHead).
    await sendNodeResponse(response, res, req, true);
  }

  /** One event as yoga writes it: errors masked, yoga's internal extensions left out. */
  function frame(result: ExecutionResult, requestId: string): string {
    if (!result.errors?.length) return JSON.stringify(result);
    const masked = result.errors.map((e) => d.errors.mask(e, 'Unexpected error.') as GraphQLError);
    d.errors.report({ errors: masked }, requestId);
    const errors = masked.map((e) => {
      const { extensions, ...json } =
        typeof e.toJSON === 'function' ? e.toJSON() : { message: e.message, extensions: undefined };
      if (!extensions) return json;
      const { http: _h, unexpected: _u, ...rest } = extensions as Record<string, unknown>;
      return Object.keys(rest).length > 0 ? { ...json, extensions: rest } : json;
    });
    return JSON.stringify({ ...result, errors });
  }

  async function stream(
    res: ServerResponse,
    source: AsyncIterable<unknown>,
    run: (payload: unknown) => ExecutionResult | Promise<ExecutionResult>,
    requestId: string,
  ) {
    const events = d.shutdown ? endOnAbort(source, d.shutdown.signal, d.shutdown.waiters) : source;
    const it = events[Symbol.asyncIterator]();
    const end = () => void Promise.resolve(it.return?.()).catch(() => {});
    // The client left while the subscription was being opened: it ends before any byte.
    if (res.destroyed) return end();
    res.writeHead(200, SSE_HEADERS);
    res.write(':\n\n');
    streams.add(res);
    opened.fast.inc();
    let drained: (() => void) | undefined;
    const onClose = () => {
      // No ping into a closed response, even while the source has yet to settle its next().
      streams.delete(res);
      drained?.();
      end();
    };
    res.once('close', onClose);
    try {
      for (let r = await it.next(); !r.done && !res.destroyed; r = await it.next()) {
        const result = await run(r.value);
        if (res.destroyed) break;
        // The next event is taken only once the client took this one: what a slow client has
        // not read waits in the subscription's own bounded buffer (urls/live-urls.ts).
        if (!res.write(`event: next\ndata: ${frame(result, requestId)}\n\n`)) {
          await new Promise<void>((resolve) => {
            drained = resolve;
            res.once('drain', resolve);
          });
          res.removeListener('drain', drained!);
          drained = undefined;
        }
      }
      if (!res.destroyed) res.end('event: complete\ndata:\n\n');
    } catch (err) {
      d.logger.error({ err, requestId }, 'subscription stream failed');
      res.destroy();
    } finally {
      streams.delete(res);
      res.removeListener('close', onClose);
      end();
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, tooDeep } = await readBody(req);
    // JSON nested too deep would hold the event loop in JSON.parse: yoga refuses it unparsed.
    if (tooDeep) return handOver(req, res, body);
    let params: unknown;
    try {
      params = JSON.parse(body);
    } catch {
      return handOver(req, res, body);
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params))
      return handOver(req, res, body);
    const { variables, ...rest } = params as Record<string, unknown>;
    if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
      return handOver(req, res, body);
    }
    const key = JSON.stringify(rest);
    const known = accepted.get(key);
    if (!known) return handOver(req, res, body, key);

    let viewer: Context['viewer'];
    try {
      viewer = await d.authenticate(req.headers.authorization);
    } catch {
      return handOver(req, res, body, key);
    }
    const { document, operationName } = known;
    const variableValues = (variables ?? undefined) as Record<string, unknown> | undefined;
    if (costRefusal({ schema: d.schema, document, operationName, variableValues })) {
      return handOver(req, res, body, key);
    }
    const requestId = requestIdOf(req) ?? 'unknown';
    const contextValue = contextOf(d.services, viewer, requestId);
    let source: Awaited<ReturnType<typeof createSourceEventStream>>;
    try {
      source = await createSourceEventStream({
        schema: d.schema,
        document,
        contextValue,
        variableValues,
        operationName,
      });
    } catch {
      return handOver(req, res, body, key);
    }
    if (!isAsyncIterable(source)) return handOver(req, res, body, key);
    const compiled = d.compiled?.(d.schema, document, operationName);
    const run = compiled
      ? (payload: unknown) =>
          compiled.query(payload, contextValue, variableValues) as ExecutionResult | Promise<ExecutionResult>
      : (payload: unknown) =>
          execute({
            schema: d.schema,
            document,
            rootValue: payload,
            contextValue,
            variableValues,
            operationName,
          });
    // Returned, not awaited: this function's frame (the body, its parse, the key) is not held
    // for as long as the subscription lasts.
    return stream(res, source, run, requestId);
  }

  return {
    eligible(req) {
      if (req.method !== 'POST' || req.url !== '/graphql') return false;
      const h = req.headers;
      if (h.accept !== 'text/event-stream') return false;
      const type = h['content-type'];
      if (type !== 'application/json' && type !== 'application/json; charset=utf-8') return false;
      if (h['transfer-encoding'] !== undefined || (d.cors && h.origin !== undefined)) return false;
      const length = Number(h['content-length']);
      return length > 0 && length <= d.maxBodyBytes;
    },
    handle,
    plugin,
    close() {
      clearInterval(ping);
    },
  };
}

/**
 * The body, scanned for JSON nesting as it arrives (the body limit's own guard:
 * http/plugins/use-body-limit.ts). Its size is bounded already: the eligibility check read a
 * Content-Length within the limit, refused Transfer-Encoding, and node's parser delivers no byte
 * past the Content-Length.
 *
 * Its listeners leave the request once it is read: the request lives as long as the
 * subscription, and listeners left on it kept the body's chunks and their closures for all that
 * time (~1 KiB a subscription, by a heap snapshot; docs/benchmarks.md, finding 42). Without an
 * 'error' listener node does not emit the request's 'error' at all (IncomingMessage's destroy).
 */
export function readBody(req: IncomingMessage): Promise<{ body: string; tooDeep: boolean }> {
  return new Promise((resolve, reject) => {
    // One chunk is the usual body: no array and no copy for it.
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    const guard = nestingGuard(true);
    let tooDeep = false;
    const onData = (c: Buffer) => {
      if (first === undefined) first = c;
      else if (more === undefined) more = [first, c];
      else more.push(c);
      tooDeep ||= guard(c) !== undefined;
    };
    const detach = () => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
    };
    const onEnd = () => {
      detach();
      const body = more ? Buffer.concat(more) : first;
      resolve({ body: body?.toString('utf8') ?? '', tooDeep });
    };
    const onError = (err: Error) => {
      detach();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
