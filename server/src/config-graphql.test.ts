import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';
import { sha256Hex } from './lib/canonical-document.js';

const PROD = {
  NODE_ENV: 'production',
  AUTH_JWT_SECRET: 'a-production-secret-of-32-characters-or-more',
  PROXY_TOKEN_SECRET: 'a-proxy-secret-0123456789',
};

const DOC = 'query { viewer { id } }';
const dir = mkdtempSync(path.join(os.tmpdir(), 'signet-config-graphql-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function manifestFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('GraphQL hardening settings', () => {
  it('introspection: on outside production, off in production unless GRAPHQL_INTROSPECTION=true', () => {
    expect(loadConfig({}).graphqlIntrospection).toBe(true);
    expect(loadConfig(PROD).graphqlIntrospection).toBe(false);
    expect(loadConfig({ ...PROD, GRAPHQL_INTROSPECTION: 'true' }).graphqlIntrospection).toBe(true);
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'false' }).graphqlIntrospection).toBe(false);
    expect(failure({ GRAPHQL_INTROSPECTION: 'yes' }).variable).toBe('GRAPHQL_INTROSPECTION');
  });

  it('federation subgraph: off by default, FEDERATION=true turns it on, anything else stops start-up', () => {
    expect(loadConfig({}).federation).toBe(false);
    expect(loadConfig({ FEDERATION: 'true' }).federation).toBe(true);
    expect(loadConfig({ ...PROD, FEDERATION: 'true' }).federation).toBe(true);
    expect(failure({ FEDERATION: 'yes' }).variable).toBe('FEDERATION');
    // The gateway's planned documents are in no allow-list.
    const both = failure({
      FEDERATION: 'true',
      PERSISTED_OPERATIONS_FILE: 'ops.json',
      PERSISTED_OPERATIONS_ONLY: 'true',
    });
    expect(both.variable).toBe('FEDERATION');
    expect(both.message).toContain('PERSISTED_OPERATIONS_ONLY');
  });

  it('JSON bodies: 1 MiB by default, bounded', () => {
    expect(loadConfig({}).graphqlMaxBodyBytes).toBe(1024 * 1024);
    expect(loadConfig({ GRAPHQL_MAX_BODY_BYTES: '65536' }).graphqlMaxBodyBytes).toBe(65536);
    expect(failure({ GRAPHQL_MAX_BODY_BYTES: '10' }).variable).toBe('GRAPHQL_MAX_BODY_BYTES');
  });

  it('persisted operations: off by default; ONLY needs a FILE', () => {
    const c = loadConfig({});
    expect(c.persistedOperationsFile).toBeUndefined();
    expect(c.persistedOperationsOnly).toBe(false);
    const file = manifestFile('ops.json', JSON.stringify({ [sha256Hex(DOC)]: DOC }));
    expect(loadConfig({ PERSISTED_OPERATIONS_FILE: file, PERSISTED_OPERATIONS_ONLY: 'true' })).toMatchObject({
      persistedOperationsFile: path.resolve(file),
      persistedOperationsOnly: true,
    });
    expect(failure({ PERSISTED_OPERATIONS_ONLY: 'true' }).variable).toBe('PERSISTED_OPERATIONS_ONLY');
    expect(failure({ PERSISTED_OPERATIONS_FILE: 'x', PERSISTED_OPERATIONS_ONLY: '1' }).variable).toBe(
      'PERSISTED_OPERATIONS_ONLY',
    );
  });

  it('PERSISTED_OPERATIONS_FILE missing, unreadable or not a JSON object stops start-up (78), not the first request', () => {
    const missing = failure({ PERSISTED_OPERATIONS_FILE: path.join(dir, 'nope.json') });
    expect(missing.variable).toBe('PERSISTED_OPERATIONS_FILE');
    expect(missing.message).toContain('ENOENT');
    const notJson = failure({ PERSISTED_OPERATIONS_FILE: manifestFile('broken.json', '{ "abc": ') });
    expect(notJson.variable).toBe('PERSISTED_OPERATIONS_FILE');
    expect(notJson.message).toContain('not JSON');
    for (const text of ['[]', '{}', '"x"', 'null']) {
      expect(failure({ PERSISTED_OPERATIONS_FILE: manifestFile('odd.json', text) }).variable, text).toBe(
        'PERSISTED_OPERATIONS_FILE',
      );
    }
    // A directory: readable as a path, not as a file.
    expect(failure({ PERSISTED_OPERATIONS_FILE: dir }).message).toContain('EISDIR');
  });

  it('CORS_ORIGINS: exact origins only; none means same origin only', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example, http://localhost:5173/' }).corsOrigins).toEqual([
      'https://app.example',
      'http://localhost:5173',
    ]);
    for (const bad of [
      '*',
      'app.example',
      'https://app.example/path',
      'ftp://x.example',
      'https://a.example,',
      'https://a.example:443',
    ]) {
      expect(failure({ CORS_ORIGINS: bad }).variable, bad).toBe('CORS_ORIGINS');
    }
  });
});
