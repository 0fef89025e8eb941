import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { TEST_JWT_SECRET } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';

const VIEWER = '{ viewer { id isAdmin } }';

describe('signet token', () => {
  let h: Harness;

  beforeAll(async () => {
    // Auth on with the tests' AUTH_JWT_SECRET: the gateway checks what the command signs.
    h = await startHarness({ driver: 'local', redis: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  const env = { AUTH_JWT_SECRET: TEST_JWT_SECRET, PROXY_TOKEN_SECRET: 'cli-proxy-secret-0123456789' };

  it('prints a token the gateway accepts as that user', async () => {
    const run = await runCli(['token', '--sub', 'carol'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const r = await h.gql<{ viewer: { id: string; isAdmin: boolean } }>(VIEWER, {}, { token });
    expect(r.errors).toBeUndefined();
    expect(r.data?.viewer).toEqual({ id: 'carol', isAdmin: false });
  });

  it('--admin makes an admin; --ttl bounds its life', async () => {
    const run = await runCli(['token', '--sub', 'root', '--admin', '--ttl', '2'], env);
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
      exp: number;
      iat: number;
      role: string;
    };
    expect(payload.exp - payload.iat).toBe(2);
    expect(payload.role).toBe('admin');
    const r = await h.gql<{ viewer: { id: string; isAdmin: boolean } }>(VIEWER, {}, { token });
    expect(r.data?.viewer).toEqual({ id: 'root', isAdmin: true });
    await new Promise((resolve) => setTimeout(resolve, (payload.exp + 1) * 1000 - Date.now()));
    const late = await h.gql(VIEWER, {}, { token });
    expect(late.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('--service carries role "service"', async () => {
    const run = await runCli(['token', '--sub', 'products-backend', '--service'], env);
    expect(run.code).toBe(0);
    const payload = JSON.parse(Buffer.from(run.stdout.trim().split('.')[1]!, 'base64url').toString());
    expect(payload).toMatchObject({ sub: 'products-backend', role: 'service' });
    const r = await h.gql<{ viewer: { id: string } }>(VIEWER, {}, { token: run.stdout.trim() });
    expect(r.data?.viewer.id).toBe('products-backend');
  });

  it('a token signed with another secret is refused by the gateway', async () => {
    const run = await runCli(['token', '--sub', 'carol'], {
      AUTH_JWT_SECRET: 'another-secret-another-secret-0123456789',
      PROXY_TOKEN_SECRET: 'cli-proxy-secret-0123456789',
    });
    expect(run.code).toBe(0);
    const r = await h.gql(VIEWER, {}, { token: run.stdout.trim() });
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses clearly when no secret is configured, and on bad usage', async () => {
    const none = await runCli(['token', '--sub', 'carol'], {});
    expect(none.code).toBe(78);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('AUTH_JWT_SECRET is not set');

    const jwks = await runCli(['token', '--sub', 'carol'], {
      AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks.json',
      PROXY_TOKEN_SECRET: 'cli-proxy-secret-0123456789',
    });
    expect(jwks.code).toBe(78);
    expect(jwks.stderr).toContain('identity provider');

    const noSub = await runCli(['token'], env);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('--sub');

    const badSub = await runCli(['token', '--sub', '../x'], env);
    expect(badSub.code).toBe(2);
    expect(badSub.stderr).toContain('--sub must be');

    const both = await runCli(['token', '--sub', 'x', '--admin', '--service'], env);
    expect(both.code).toBe(2);

    const badTtl = await runCli(['token', '--sub', 'x', '--ttl', 'soon'], env);
    expect(badTtl.code).toBe(2);
    // What was typed, not NaN.
    expect(badTtl.stderr).toContain('--ttl must be a whole number of seconds, got "soon"');
  }, 180_000); // six processes, each starting through tsx
});
