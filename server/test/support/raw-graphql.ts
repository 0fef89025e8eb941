import { GRAPHQL_CODES } from '../../src/errors/index.js';
import type { Harness } from './harness.js';

export interface RawGqlError {
  message: string;
  extensions?: { code?: string; [k: string]: unknown };
}

export interface RawGql {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or null when it was not JSON. */
  body: { data?: Record<string, unknown> | null; errors?: RawGqlError[] } | null;
  codes: (string | undefined)[];
}

/** Codes a client may see for its own mistakes: every GraphQL code of the error table but 500. */
export const CLIENT_CODES = new Set<string>(GRAPHQL_CODES.filter((c) => c !== 'INTERNAL_SERVER_ERROR'));

/** Any POST to /graphql, answered as text (a hostile body must not break the test's parsing). */
export async function postGraphql(
  h: Harness,
  body: string | Uint8Array | FormData | ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
): Promise<RawGql> {
  const res = await fetch(`${h.url}/graphql`, {
    method: 'POST',
    headers: { ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body as BodyInit,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  return answer(res);
}

export async function answer(res: Response): Promise<RawGql> {
  const text = await res.text();
  let body: RawGql['body'] = null;
  try {
    body = JSON.parse(text) as RawGql['body'];
  } catch {
    // not JSON
  }
  return {
    status: res.status,
    headers: res.headers,
    text,
    body,
    codes: (body?.errors ?? []).map((e) => e.extensions?.code),
  };
}

/** A JSON GraphQL request with a bearer token (or none). */
export async function gqlRaw(
  h: Harness,
  payload: Record<string, unknown>,
  opts: { token?: string | null; headers?: Record<string, string> } = {},
): Promise<RawGql> {
  const token = opts.token === undefined ? await h.token('alice') : opts.token;
  return postGraphql(h, JSON.stringify(payload), {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...opts.headers,
  });
}

/** A JSON GraphQL request with exactly the given Authorization header (any scheme), or none. */
export function gqlAuthorized(
  h: Harness,
  query: string,
  variables: Record<string, unknown> = {},
  authorization?: string,
): Promise<RawGql> {
  return postGraphql(h, JSON.stringify({ query, variables }), authorization ? { authorization } : {});
}
