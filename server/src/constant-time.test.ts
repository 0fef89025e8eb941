import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { createProxyTokens } from './auth/proxy-token.js';
import { FakeClock } from './clock.js';
import { createMetricsRoute } from './http/health.js';
import { localSignature, verifyLocalSignature } from './storage/local.js';

const IMG = '6f1c1b1e-8a0e-4c4a-9a57-0d7a1f6a2b3c';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The verifiers of the gateway's own MACs (proxy tokens, local-bucket URLs) must refuse every
 * near miss and decide with crypto.timingSafeEqual: `===` or Buffer.equals return at the first
 * differing byte and so tell an attacker, byte by byte, how much of a forgery is right.
 *
 * timingSafeEqual is watched where the verifiers get it: the node:crypto module object, whose
 * change syncBuiltinESMExports() carries into every module's `import { timingSafeEqual }`. Each
 * refusal of a well-formed MAC must have gone through it with two buffers of the MAC's length.
 */
describe('constant-time verification of MACs', () => {
  let safeEqual: MockInstance<typeof crypto.timingSafeEqual>;
  beforeEach(() => {
    safeEqual = vi.spyOn(crypto, 'timingSafeEqual');
    syncBuiltinESMExports();
  });
  afterEach(() => {
    safeEqual.mockRestore();
    syncBuiltinESMExports();
  });

  /** Every comparison made so far was timingSafeEqual over two `bytes`-long buffers; returns how many. */
  const comparisons = (bytes: number): number => {
    for (const [a, b] of safeEqual.mock.calls) {
      expect(a.byteLength).toBe(bytes);
      expect(b.byteLength).toBe(bytes);
    }
    return safeEqual.mock.calls.length;
  };

  describe('proxy tokens', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const tokens = createProxyTokens({
      secrets: [{ kid: 'k0', secret: 'a-secret-a-secret' }],
      ttlSeconds: 3600,
      clock,
    });
    const withMac = (token: string, mac: Buffer) =>
      `${token.slice(0, token.lastIndexOf('.'))}.${mac.toString('base64url')}`;

    it('accepts its own token through one constant-time comparison of the whole MAC', () => {
      const t = tokens.sign(IMG, 'redirect');
      expect(tokens.verify(t, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'any' });
      expect(comparisons(16)).toBe(1);
      // The MAC the token carries is one of the two sides.
      const given = Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url');
      const [a, b] = safeEqual.mock.calls[0]!;
      expect(Buffer.from(a as Uint8Array).equals(given) || Buffer.from(b as Uint8Array).equals(given)).toBe(
        true,
      );
    });

    it('refuses every single-byte change of the MAC, each decided by timingSafeEqual', () => {
      const t = tokens.sign(IMG, 'redirect');
      const mac = Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url');
      expect(mac).toHaveLength(16);
      let tried = 0;
      for (let i = 0; i < mac.length; i++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const forged = Buffer.from(mac);
          forged[i]! ^= mask;
          expect(tokens.verify(withMac(t, forged), IMG, 'redirect'), `byte ${i} ^ ${mask}`).toEqual({
            ok: false,
            reason: 'mismatch',
          });
          tried++;
        }
      }
      // No refusal was decided before the comparison (an early exit on the first byte would be):
      // one comparison per scope the MAC could be of (`any`, then `public`).
      expect(comparisons(16)).toBe(tried * 2);
    });

    it('refuses MACs of any other length without comparing (and without throwing)', () => {
      const t = tokens.sign(IMG, 'redirect');
      const mac = Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url');
      for (const other of [
        mac.subarray(0, 15),
        Buffer.concat([mac, Buffer.from([0])]),
        Buffer.alloc(0),
        Buffer.concat([mac, mac]),
      ]) {
        expect(tokens.verify(withMac(t, other), IMG, 'redirect'), `${other.length} bytes`).toEqual({
          ok: false,
          reason: 'malformed',
        });
      }
      // A length is no secret; timingSafeEqual would throw on unequal lengths anyway.
      expect(safeEqual).not.toHaveBeenCalled();
    });
  });

  describe('the /metrics bearer token', () => {
    const token = 'metrics-token-0123456789';
    const route = createMetricsRoute(
      {
        metrics: { registry: { metrics: async () => '', contentType: 'text/plain' } as never },
        config: { metricsToken: token },
      },
      { check: async () => ({}) } as never,
    );
    const res = { writeHead: () => {}, end: () => {} } as unknown as ServerResponse;
    const call = (authorization: string) =>
      route({ headers: { authorization } } as IncomingMessage, res).then(
        () => true,
        () => false,
      );

    it('takes the scheme in any case, and decides the token with timingSafeEqual', async () => {
      expect(await call(`bearer ${token}`)).toBe(true);
      expect(await call(`BEARER ${token}`)).toBe(true);
      const forged = `${token.slice(0, -1)}x`;
      expect(await call(`bearer ${forged}`)).toBe(false);
      expect(await call(`Bearer ${forged}`)).toBe(false);
      expect(comparisons(token.length)).toBe(4);
    });
  });

  describe('local-bucket URL signatures', () => {
    const secret = 'local-secret-local-secret';
    const key = 'u/alice/1.png';
    const window = { start: 1_767_225_600, end: 1_767_229_200 };
    const sig = localSignature(secret, key, window);

    it('accepts the right signature through one constant-time comparison', () => {
      expect(verifyLocalSignature(secret, key, window, sig)).toBe(true);
      expect(comparisons(sig.length)).toBe(1);
    });

    it('refuses every single-character change, each decided by timingSafeEqual', () => {
      let tried = 0;
      for (let i = 0; i < sig.length; i++) {
        for (const c of [
          B64URL[(B64URL.indexOf(sig[i]!) + 1) % 64]!,
          B64URL[(B64URL.indexOf(sig[i]!) + 32) % 64]!,
        ]) {
          const forged = `${sig.slice(0, i)}${c}${sig.slice(i + 1)}`;
          expect(verifyLocalSignature(secret, key, window, forged), `position ${i}`).toBe(false);
          tried++;
        }
      }
      expect(comparisons(sig.length)).toBe(tried);
    });

    it('refuses signatures of any other length without comparing (and without throwing)', () => {
      for (const other of [sig.slice(0, -1), `${sig}A`, '', `${sig}${sig}`, `${sig.slice(0, -1)}é`]) {
        expect(verifyLocalSignature(secret, key, window, other), `${other.length} chars`).toBe(false);
      }
      expect(safeEqual).not.toHaveBeenCalled();
    });
  });
});
