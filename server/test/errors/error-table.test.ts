import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/viewer.js';
import { loadConfig } from '../../src/config.js';
import {
  AppError,
  ERROR_TABLE,
  type Failure,
  type FailureSpec,
  GRAPHQL_CODES,
} from '../../src/errors/index.js';
import { createGraphql } from '../../src/http/graphql.js';
import { renderError } from '../../src/http/render-error.js';
import { UploadSlots } from '../../src/images/upload-slots.js';
import { createMetrics } from '../../src/metrics.js';
import type { SchemaServices } from '../../src/schema/context.js';
import { captureLogger } from '../support/logs.js';

// Walks the one error table: every failure renders with its declared status, code and headers
// on REST, and with its declared GraphQL code through the real yoga pipeline (masking included).
const failures = Object.keys(ERROR_TABLE) as Failure[];
const { logger, logs } = captureLogger('info');

describe('the error table', () => {
  let server: Server;
  let url: string;
  let thrown: AppError;

  beforeAll(async () => {
    // A route that throws, answered by the one renderer, as every REST route is.
    server = createServer((_req, res) => renderError(res, thrown, logger));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it.each(failures)('%s renders on REST as declared', async (failure) => {
    const spec: FailureSpec = ERROR_TABLE[failure];
    thrown = new AppError(failure, `test ${failure}`, { headers: { 'x-extra': 'kept' } });
    const res = await fetch(`${url}/any`);
    expect(res.status).toBe(spec.status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: spec.code, message: `test ${failure}` });
    for (const [name, value] of Object.entries(spec.headers ?? {})) expect(res.headers.get(name)).toBe(value);
    expect(res.headers.get('retry-after')).toBe(
      spec.retryAfterSeconds === undefined ? null : String(spec.retryAfterSeconds),
    );
    expect(res.headers.get('x-extra')).toBe('kept');
    expect(res.headers.get('cache-control')).toBe('no-store');
    // HEAD: the same status and headers, no body.
    const head = await fetch(`${url}/any`, { method: 'HEAD' });
    expect(head.status).toBe(spec.status);
    expect(await head.text()).toBe('');
  });

  it('an error the table does not know is logged and masked as a 500', async () => {
    const server2 = createServer((_req, res) => renderError(res, new Error('secret detail'), logger));
    await new Promise<void>((r) => server2.listen(0, '127.0.0.1', r));
    const res = await fetch(`http://127.0.0.1:${(server2.address() as AddressInfo).port}/`);
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(JSON.parse(text).error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(text).not.toContain('secret detail');
    expect(logs.some((l) => l.includes('secret detail'))).toBe(true);
    server2.closeAllConnections();
    await new Promise<void>((r) => server2.close(() => r()));
  });

  describe('GraphQL', () => {
    let failWith: AppError;
    const { yoga } = createGraphql({
      config: loadConfig({ AUTH_JWT_SECRET: undefined }),
      logger,
      metrics: createMetrics(),
      authenticate: createAuthenticator(loadConfig({}).auth),
      uploadSlots: new UploadSlots({ perViewer: 4, perNode: 32 }),
      // Only urlStats is asked for below: it throws the failure under test.
      schema: {
        urlStats: async () => {
          throw failWith;
        },
      } as unknown as SchemaServices,
    });

    const graphqlFailures = failures.filter((f) => ERROR_TABLE[f].graphqlCode !== null);

    it.each(graphqlFailures)('%s thrown by a resolver carries its GraphQL code', async (failure) => {
      const spec: FailureSpec = ERROR_TABLE[failure];
      failWith = new AppError(failure, `test ${failure}`);
      const res = await yoga.fetch('http://gw.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ urlStats { requests } }' }),
      });
      const body = (await res.json()) as {
        errors: { message: string; extensions: Record<string, unknown> }[];
      };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]!.extensions.code).toBe(spec.graphqlCode);
      expect(body.errors[0]!.message).toBe(`test ${failure}`);
      if (spec.retryAfterSeconds !== undefined) {
        expect(body.errors[0]!.extensions.retryAfter).toBe(spec.retryAfterSeconds);
      }
    });

    it.each(graphqlFailures)('%s raised before execution also sets the HTTP status', async (failure) => {
      const spec: FailureSpec = ERROR_TABLE[failure];
      failWith = new AppError(failure, `test ${failure}`, { requestLevel: true });
      const res = await yoga.fetch('http://gw.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ urlStats { requests } }' }),
      });
      expect(res.status).toBe(spec.status);
      for (const [name, value] of Object.entries(spec.headers ?? {}))
        expect(res.headers.get(name)).toBe(value);
    });

    it('docs/architecture.md prints the table entry by entry, and the README names every GraphQL code', () => {
      const root = new URL('../../../', import.meta.url);
      const doc = readFileSync(new URL('docs/architecture.md', root), 'utf8');
      const start = doc.indexOf('| failure | REST status |');
      const rows = doc
        .slice(start, doc.indexOf('\n\n', start))
        .split('\n')
        .slice(2)
        .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| /, '').trim()));
      const unquote = (cell: string | undefined) => /^`([A-Z_]+)`$/.exec(cell ?? '')?.[1] ?? null;
      expect(
        rows.map(([failure, status, code, graphql, , retry]) => ({
          failure: unquote(failure),
          status: Number(status),
          code: unquote(code),
          graphql: unquote(graphql),
          retry: retry === '—' ? null : Number(retry),
        })),
      ).toEqual(
        failures.map((f) => {
          const spec: FailureSpec = ERROR_TABLE[f];
          return {
            failure: f,
            status: spec.status,
            code: spec.code,
            graphql: spec.graphqlCode,
            retry: spec.retryAfterSeconds ?? null,
          };
        }),
      );
      const readme = readFileSync(new URL('README.md', root), 'utf8');
      const errors = readme.slice(readme.indexOf('\n## Errors\n'));
      for (const code of GRAPHQL_CODES) expect(errors, code).toContain(`\`${code}\``);
    });

    it('only table codes are GraphQL codes, and every one belongs to a failure', () => {
      expect(new Set(GRAPHQL_CODES)).toEqual(
        new Set([
          'BAD_USER_INPUT',
          'GRAPHQL_PARSE_FAILED',
          'GRAPHQL_VALIDATION_FAILED',
          'UNAUTHENTICATED',
          'FORBIDDEN',
          'NOT_FOUND',
          'PAYLOAD_TOO_LARGE',
          'UNSUPPORTED_MEDIA_TYPE',
          'RATE_LIMITED',
          'INTERNAL_SERVER_ERROR',
          'SERVICE_UNAVAILABLE',
        ]),
      );
    });
  });
});
