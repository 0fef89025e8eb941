import { readFileSync } from 'node:fs';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ConfigError } from '../../config.js';
import { ERROR_TABLE, type Failure } from '../../errors/index.js';
import { canonicalDocument, sha256Hex } from '../../lib/canonical-document.js';
import { QUERY_LIMITS } from './use-query-limits.js';

export interface PersistedOperations {
  /** sha256 (hex) of a document's text → the text. */
  byHash: ReadonlyMap<string, string>;
  /** The canonical form of every listed document (see canonicalDocument). */
  canonical: ReadonlySet<string>;
}

const HASH = /^[0-9a-f]{64}$/;

/**
 * A manifest: `{ "<sha256>": "<document>" }` (`npm run persisted`), or Apollo's persisted query
 * manifest (`{ "operations": [{ "id", "body" }] }`). Every key must be the sha256 of its document,
 * so a hand-edited entry cannot smuggle in a document under another one's hash.
 */
export function persistedOperationsFrom(manifest: unknown): PersistedOperations {
  const entries: [string, unknown][] =
    manifest &&
    typeof manifest === 'object' &&
    Array.isArray((manifest as { operations?: unknown }).operations)
      ? (manifest as { operations: { id?: unknown; body?: unknown }[] }).operations.map((o) => [
          String(o?.id),
          o?.body,
        ])
      : Object.entries((manifest ?? {}) as Record<string, unknown>);
  if (typeof manifest !== 'object' || manifest === null || entries.length === 0) {
    throw new Error('expected a non-empty JSON object of sha256 → document');
  }
  const byHash = new Map<string, string>();
  const canonical = new Set<string>();
  for (const [hash, doc] of entries) {
    if (!HASH.test(hash) || typeof doc !== 'string' || sha256Hex(doc) !== hash) {
      throw new Error(`entry "${hash.slice(0, 70)}" is not the sha256 of its document`);
    }
    byHash.set(hash, doc);
    canonical.add(canonicalDocument(parse(doc)));
  }
  return { byHash, canonical };
}

/** Reads PERSISTED_OPERATIONS_FILE once at start; a bad file stops start-up naming the variable. */
export function loadPersistedOperations(file: string): PersistedOperations {
  try {
    return persistedOperationsFrom(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    throw new ConfigError('PERSISTED_OPERATIONS_FILE', `${file}: ${(err as Error).message}`);
  }
}

/** Whether a document the client sent in full is a listed one (modulo formatting and __typename). */
function isListed(ops: PersistedOperations, query: string): boolean {
  try {
    return ops.canonical.has(canonicalDocument(parse(query, { maxTokens: QUERY_LIMITS.tokens })));
  } catch {
    return false;
  }
}

/**
 * Persisted operations (`extensions.persistedQuery.sha256Hash`, the Apollo/yoga convention). With
 * `only`, nothing else runs, except the listed documents sent in full: the web app sends its
 * documents as text with `__typename` added, and those match the list without a client change.
 */
/** The plugin takes plain error shapes: these come from the error table all the same. */
function tableExtensions(failure: Failure) {
  const spec = ERROR_TABLE[failure];
  return { code: spec.graphqlCode ?? spec.code, http: { status: spec.status } };
}

export function usePersistedDocuments(ops: PersistedOperations, opts: { only: boolean }): Plugin[] {
  const admitted = new WeakSet<Request>();
  const listedInFull: Plugin = {
    onParams({ params, request }) {
      if (opts.only && typeof params.query === 'string' && isListed(ops, params.query)) admitted.add(request);
    },
  };
  const persisted = usePersistedOperations({
    getPersistedOperation: (hash) => ops.byHash.get(hash) ?? null,
    allowArbitraryOperations: opts.only ? (request) => admitted.has(request) : true,
    customErrors: {
      notFound: { message: 'PersistedQueryNotFound', extensions: tableExtensions('BAD_USER_INPUT') },
      keyNotFound: { message: 'PersistedQueryKeyNotFound', extensions: tableExtensions('BAD_USER_INPUT') },
      persistedQueryOnly: {
        message: 'Only persisted operations are accepted here (extensions.persistedQuery.sha256Hash)',
        extensions: tableExtensions('FORBIDDEN'),
      },
    },
  }) as Plugin;
  return [listedInFull, persisted];
}
