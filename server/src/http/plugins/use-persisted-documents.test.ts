import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../config.js';
import { canonicalDocument, sha256Hex } from '../../lib/canonical-document.js';
import { loadPersistedOperations, persistedOperationsFrom } from './use-persisted-documents.js';

const DOC = 'query Viewer {\n  viewer {\n    id\n  }\n}';

describe('persistedOperationsFrom', () => {
  it('takes a { sha256: document } map and Apollo’s operations manifest', () => {
    for (const manifest of [
      { [sha256Hex(DOC)]: DOC },
      {
        format: 'apollo-persisted-query-manifest',
        version: 1,
        operations: [{ id: sha256Hex(DOC), body: DOC, name: 'Viewer' }],
      },
    ]) {
      const ops = persistedOperationsFrom(manifest);
      expect(ops.byHash.get(sha256Hex(DOC))).toBe(DOC);
      expect(ops.canonical.has(canonicalDocument(parse(DOC)))).toBe(true);
    }
  });

  it('refuses an entry whose key is not the sha256 of its document, and empty or odd files', () => {
    expect(() => persistedOperationsFrom({ [sha256Hex('other')]: DOC })).toThrow(/not the sha256/);
    expect(() => persistedOperationsFrom({ abc: DOC })).toThrow(/not the sha256/);
    expect(() => persistedOperationsFrom({ [sha256Hex(DOC)]: 42 })).toThrow(/not the sha256/);
    expect(() => persistedOperationsFrom({})).toThrow(/non-empty/);
    expect(() => persistedOperationsFrom([])).toThrow(/non-empty/);
    expect(() => persistedOperationsFrom('x')).toThrow(/non-empty/);
    const broken = 'query {';
    expect(() => persistedOperationsFrom({ [sha256Hex(broken)]: broken })).toThrow(/Syntax Error/);
  });

  it('a missing or broken file stops start-up naming PERSISTED_OPERATIONS_FILE', () => {
    let err: unknown;
    try {
      loadPersistedOperations('/nonexistent/persisted.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe('PERSISTED_OPERATIONS_FILE');
  });
});
