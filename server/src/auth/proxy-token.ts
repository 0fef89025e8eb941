import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import { BoundedMap } from '../lib/bounded-map.js';

/** What a proxy link opens: a redirect to the signed URL, or the bytes through the gateway. */
export type ProxyMode = 'redirect' | 'stream';

/**
 * Capability tokens for `/proxy/<id>?t=<token>` (the link `Image.proxyUrl` hands out):
 * `<kid>.<exp>.<mac>`, where `exp` is the expiry in unix seconds (base 36, `0` = none, only when
 * links are configured never to expire) and `mac` is a truncated HMAC-SHA256, keyed by the secret
 * named `kid`, over everything the link grants: the image id, the expiry, the key id and the mode
 * (a redirect link does not open the bytes, nor the other way round). So a token is checked
 * completely before any I/O: a forged one costs no SQL. Nothing is stored: deleting the image
 * revokes its links (the route only serves live rows), removing a key id from the configuration
 * revokes every link it signed.
 *
 * A link minted for a viewer who reads the image only because it is public has the `public`
 * scope (a MAC of another domain, same length and shape): the route honours it only while the
 * image is still public, so turning an image private revokes the links others were handed.
 * Links of its owner, admins and services have the `any` scope (docs/architecture.md, "Who sees
 * what").
 */
export type TokenScope = 'any' | 'public';

export interface ProxyTokens {
  /** `scope`: see TokenScope; `preset`: the link opens that variant only. */
  sign(imageId: string, mode: ProxyMode, scope?: TokenScope, preset?: string): string;
  /** The whole check: shape, a configured key id, not expired, and the MAC over what is asked. */
  verify(token: string, imageId: string, mode: ProxyMode, preset?: string): TokenCheck;
}

export type TokenCheck =
  /** `expiresAt`: epoch ms the token stops working (null: never). */
  | { ok: true; scope: TokenScope; expiresAt: number | null }
  | { ok: false; reason: 'malformed' | 'unknown_key' | 'expired' | 'mismatch' };

export interface ProxyTokenOptions {
  /** The first key signs; every key verifies (rotation: prepend the new key, drop the old later). */
  secrets: readonly { kid: string; secret: string }[];
  /** 0: tokens never expire. */
  ttlSeconds: number;
  clock: Clock;
}

/**
 * Tokens this node verified, with what they grant: a page's `<img>` tags and their reloads send
 * the same links again and again, and a hot redirect is little more than this check. Only good
 * answers are kept, each with everything its MAC covers, and each is taken only until its expiry.
 */
const VERIFIED_TOKENS = 20_000;

/** 128 bits of MAC: unforgeable, and keeps a token near 40 characters. */
const MAC_BYTES = 16;
const TOKEN = /^([A-Za-z0-9_-]{1,16})\.([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})$/;

interface Parsed {
  kid: string;
  exp: number;
  mac: Buffer;
}

function parse(token: string): Parsed | null {
  const m = TOKEN.exec(token);
  if (!m) return null;
  const exp = Number.parseInt(m[2]!, 36);
  const mac = Buffer.from(m[3]!, 'base64url');
  // Canonical forms only: the last base64 character has spare bits, and a token must have
  // exactly one spelling (a changed character is a different, invalid token).
  if (!Number.isSafeInteger(exp) || mac.length !== MAC_BYTES || mac.toString('base64url') !== m[3])
    return null;
  if (exp.toString(36) !== m[2]) return null;
  return { kid: m[1]!, exp, mac };
}

/**
 * Expiries are rounded down to a step (1/24 of the TTL, at most a day), so every proxyUrl of an
 * image within a step is the same string and browsers and CDNs can cache the `<img>` by URL. A
 * token therefore lives between TTL - step and TTL, never longer than configured.
 */
export function expiryFor(nowMs: number, ttlSeconds: number): number {
  if (ttlSeconds <= 0) return 0;
  const step = Math.min(86_400, Math.max(1, Math.floor(ttlSeconds / 24)));
  const exp = Math.floor((nowMs / 1000 + ttlSeconds) / step) * step;
  // Never hand out a token that is already dead (tiny TTLs).
  return Math.max(exp, Math.floor(nowMs / 1000) + 1);
}

export function createProxyTokens(opts: ProxyTokenOptions): ProxyTokens {
  if (opts.secrets.length === 0) throw new Error('proxy tokens need at least one secret');
  const keys = new Map(opts.secrets.map((s) => [s.kid, s.secret] as const));
  const signer = opts.secrets[0]!;
  // By the token alone, with what it was verified for: a token's MAC binds one image, mode and
  // preset, so it can be good for nothing else, and the lookup hashes ~40 characters rather than
  // a key built for the request. A hit hands out the same (frozen) answer, allocating nothing.
  const verified = new BoundedMap<
    string,
    { imageId: string; mode: ProxyMode; preset: string | undefined; check: TokenCheck & { ok: true } }
  >(VERIFIED_TOKENS);

  const mac = (
    secret: string,
    kid: string,
    imageId: string,
    exp: number,
    mode: ProxyMode,
    scope: TokenScope,
    preset: string | undefined,
  ): Buffer =>
    createHmac('sha256', secret)
      // Domain-separated, length-safe: none of the parts can contain a newline (preset names are
      // checked against the configured presets before a token is verified). The `any` scope
      // without a preset keeps the domain links had before scopes and presets existed, so those
      // stay valid.
      .update(
        `${scope === 'any' ? 'signet-proxy-v2' : 'signet-proxy-v2-public'}\n${kid}\n${imageId.toLowerCase()}\n${exp}\n${mode}${preset === undefined ? '' : `\npreset=${preset}`}`,
      )
      .digest()
      .subarray(0, MAC_BYTES);

  return {
    sign(imageId, mode, scope = 'any', preset) {
      const exp = expiryFor(opts.clock.now(), opts.ttlSeconds);
      const tag = mac(signer.secret, signer.kid, imageId, exp, mode, scope, preset).toString('base64url');
      return `${signer.kid}.${exp.toString(36)}.${tag}`;
    },
    verify(token, imageId, mode, preset) {
      const id = imageId.toLowerCase();
      const known = verified.get(token);
      if (
        known !== undefined &&
        known.imageId === id &&
        known.mode === mode &&
        known.preset === preset &&
        (known.check.expiresAt === null || opts.clock.now() < known.check.expiresAt)
      ) {
        return known.check;
      }
      const parsed = parse(token);
      if (!parsed) return { ok: false, reason: 'malformed' };
      const secret = keys.get(parsed.kid);
      if (secret === undefined) return { ok: false, reason: 'unknown_key' };
      // A never-expiring token is honoured only while links are configured never to expire.
      if (parsed.exp === 0 ? opts.ttlSeconds !== 0 : opts.clock.now() >= parsed.exp * 1000) {
        return { ok: false, reason: 'expired' };
      }
      for (const scope of ['any', 'public'] as const) {
        const expected = mac(secret, parsed.kid, imageId, parsed.exp, mode, scope, preset);
        if (timingSafeEqual(parsed.mac, expected)) {
          const check = Object.freeze({
            ok: true as const,
            scope,
            expiresAt: parsed.exp === 0 ? null : parsed.exp * 1000,
          });
          verified.set(token, { imageId: id, mode, preset, check });
          return check;
        }
      }
      return { ok: false, reason: 'mismatch' };
    },
  };
}
