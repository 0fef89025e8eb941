import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { createProxyTokens, expiryFor } from './proxy-token.js';

const IMG = '6f1c1b1e-8a0e-4c4a-9a57-0d7a1f6a2b3c';
const OTHER = '0b7f5c4e-3d2a-4f1b-8c9d-1e2f3a4b5c6d';
const OLD = { kid: 'k0', secret: 'old-secret-old-secret' };
const NEW = { kid: 'k1', secret: 'new-secret-new-secret' };

describe('proxy capability tokens', () => {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const tokens = createProxyTokens({ secrets: [OLD], ttlSeconds: 3600, clock });

  it('is compact, URL-safe and verifies for its image and mode only', () => {
    const t = tokens.sign(IMG, 'redirect');
    expect(t.length).toBeLessThanOrEqual(40);
    expect(encodeURIComponent(t)).toBe(t);
    expect(tokens.verify(t, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(tokens.verify(t, IMG.toUpperCase(), 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(tokens.verify(t, OTHER, 'redirect')).toEqual({ ok: false, reason: 'mismatch' });
    // A redirect link does not open the bytes (dropping or adding mode=stream is a forgery).
    expect(tokens.verify(t, IMG, 'stream')).toEqual({ ok: false, reason: 'mismatch' });
    expect(tokens.verify(tokens.sign(IMG, 'stream'), IMG, 'redirect')).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('carries its scope in the MAC: a public-scoped link verifies as public, and only for its image', () => {
    const pub = tokens.sign(IMG, 'redirect', 'public');
    const any = tokens.sign(IMG, 'redirect');
    expect(pub).not.toBe(any);
    expect(pub.length).toBe(any.length);
    expect(tokens.verify(pub, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'public' });
    expect(tokens.verify(pub, OTHER, 'redirect')).toEqual({ ok: false, reason: 'mismatch' });
    expect(tokens.verify(pub, IMG, 'stream')).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses tampered and malformed tokens', () => {
    const t = tokens.sign(IMG, 'redirect');
    const [kid, exp, mac] = t.split('.') as [string, string, string];
    const flipped = `${kid}.${exp}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    expect(tokens.verify(flipped, IMG, 'redirect')).toEqual({ ok: false, reason: 'mismatch' });
    // A later expiry with the old MAC is a forgery, not an extension.
    const later = `${kid}.${(Number.parseInt(exp, 36) + 86400).toString(36)}.${mac}`;
    expect(tokens.verify(later, IMG, 'redirect')).toEqual({ ok: false, reason: 'mismatch' });
    for (const bad of ['', 'x', `${t}.`, `${kid}.${exp}`, `${kid}..${mac}`, `${t}=`, 'k0.zz.%%%']) {
      expect(tokens.verify(bad, IMG, 'redirect')).toEqual({ ok: false, reason: 'malformed' });
    }
    expect(tokens.verify(`zz.${exp}.${mac}`, IMG, 'redirect')).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('expires after the TTL (never later) and not before TTL - step', () => {
    const c = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 17));
    const tk = createProxyTokens({ secrets: [OLD], ttlSeconds: 3600, clock: c });
    const t = tk.sign(IMG, 'redirect');
    const first = tk.verify(t, IMG, 'redirect');
    const exp = first.ok ? first.expiresAt! : Number.NaN;
    expect(exp).toBeLessThanOrEqual(c.now() + 3600_000);
    expect(exp).toBeGreaterThan(c.now() + 3600_000 - 150_000 - 1);
    c.set(exp - 1);
    expect(tk.verify(t, IMG, 'redirect')).toEqual({ ok: true, scope: 'any', expiresAt: exp });
    c.set(exp);
    expect(tk.verify(t, IMG, 'redirect')).toEqual({ ok: false, reason: 'expired' });
  });

  it('a token verified once (and remembered) still grants nothing else: other image, mode or preset', () => {
    const t = tokens.sign(IMG, 'redirect');
    expect(tokens.verify(t, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(tokens.verify(t, IMG.toUpperCase(), 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(tokens.verify(t, IMG, 'stream')).toEqual({ ok: false, reason: 'mismatch' });
    expect(tokens.verify(t, IMG, 'redirect', 'thumb')).toEqual({ ok: false, reason: 'mismatch' });
    const other = IMG.replace(/^./, IMG[0] === 'a' ? 'b' : 'a');
    expect(tokens.verify(t, other, 'redirect')).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('is the same string within a step, so <img src> stays cacheable', () => {
    const c = new FakeClock(Date.UTC(2026, 0, 1));
    const tk = createProxyTokens({ secrets: [OLD], ttlSeconds: 30 * 86400, clock: c });
    const a = tk.sign(IMG, 'redirect');
    c.advance(3600_000);
    expect(tk.sign(IMG, 'redirect')).toBe(a);
  });

  it('TTL 0 means no expiry', () => {
    const c = new FakeClock();
    const tk = createProxyTokens({ secrets: [OLD], ttlSeconds: 0, clock: c });
    const t = tk.sign(IMG, 'redirect');
    expect(tk.verify(t, IMG, 'redirect')).toMatchObject({ expiresAt: null });
    c.advance(10 * 365 * 86400_000);
    expect(tk.verify(t, IMG, 'redirect')).toEqual({ ok: true, scope: 'any', expiresAt: null });
  });

  it('a never-expiring token is refused once links are configured to expire', () => {
    const c = new FakeClock();
    const forever = createProxyTokens({ secrets: [OLD], ttlSeconds: 0, clock: c }).sign(IMG, 'redirect');
    const expiring = createProxyTokens({ secrets: [OLD], ttlSeconds: 3600, clock: c });
    expect(expiring.verify(forever, IMG, 'redirect')).toEqual({ ok: false, reason: 'expired' });
  });

  it('rotation: the new key signs, the previous key id verifies while configured', () => {
    const before = createProxyTokens({ secrets: [OLD], ttlSeconds: 3600, clock });
    const during = createProxyTokens({ secrets: [NEW, OLD], ttlSeconds: 3600, clock });
    const after = createProxyTokens({ secrets: [NEW], ttlSeconds: 3600, clock });
    const old = before.sign(IMG, 'redirect');
    const fresh = during.sign(IMG, 'redirect');
    expect(fresh.startsWith('k1.')).toBe(true);
    expect(during.verify(old, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(during.verify(fresh, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(after.verify(fresh, IMG, 'redirect')).toMatchObject({ ok: true, scope: 'any' });
    expect(after.verify(old, IMG, 'redirect')).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('rounds expiries down to the step but never into the past', () => {
    expect(expiryFor(Date.UTC(2026, 0, 1), 0)).toBe(0);
    const now = Date.UTC(2026, 0, 1, 0, 0, 0, 500);
    expect(expiryFor(now, 1)).toBe(Math.floor(now / 1000) + 1);
    expect(expiryFor(now, 86400 * 30) % 86400).toBe(0);
  });
});

describe('proxy token spelling', () => {
  it('accepts exactly one spelling of a token (no spare-bit or leading-zero variants)', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const tk = createProxyTokens({ secrets: [OLD], ttlSeconds: 3600, clock });
    // Try many ids, so some MACs end in a character whose spare bits can be flipped.
    for (let i = 0; i < 64; i++) {
      const id = `6f1c1b1e-8a0e-4c4a-9a57-${i.toString(16).padStart(12, '0')}`;
      const t = tk.sign(id, 'redirect');
      const last = t.at(-1)!;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
      expect(tk.verify(`${t.slice(0, -1)}${sibling}`, id, 'redirect').ok).toBe(false);
      const [kid, exp, mac] = t.split('.');
      expect(tk.verify(`${kid}.0${exp}.${mac}`, id, 'redirect').ok).toBe(false);
    }
  });
});
