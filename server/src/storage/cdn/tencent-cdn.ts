import { createHash, createHmac } from 'node:crypto';
import { type OriginTarget, type SignWindow, signerFingerprint, type UrlSignature } from '../storage.js';
import type { CdnSigner } from './cdn-signer.js';

export type TencentAuthType = 'tencent-a' | 'tencent-b' | 'tencent-c' | 'tencent-d';

export interface TencentCdnOptions {
  type: TencentAuthType;
  /** `scheme://host[:port]` of the CDN domain. */
  domain: string;
  /** The primary authentication key (the CDN also accepts its backup key: see the README). */
  key: string;
  /** Types A and D: the signature parameter's name (`CDN_AUTH_PARAM`, Tencent's default `sign`). */
  signParam: string;
  /** Type D: the timestamp parameter's name (`CDN_AUTH_TIME_PARAM`, Tencent's default `t`). */
  timeParam: string;
}

/**
 * Tencent CDN authentication (types A–D), from Tencent's documents (docs/architecture.md, "CDN
 * signers", lists them). Per key one MD5 over the encoded path, the timestamp and the key:
 * - A: `path?sign=ts-rand-0-md5(path-ts-rand-0-key)`, ts decimal;
 * - B: `/ts/md5(key ts path)/path`, ts the minute `YYYYMMDDHHMM` in UTC+8;
 * - C: `/md5(key path ts)/ts/path`, ts hexadecimal;
 * - D: `path?sign=md5(key path ts)&t=ts`, ts decimal.
 *
 * The timestamp is the signing time: the CDN adds its configured validity period, so that period
 * must be the window's length (URL_TTL_SECONDS + 60: the window starts 60 s back for clock skew)
 * and the URL then expires with the window. Type B has minutes only: its timestamp is the window
 * start rounded up to the minute (never in the future: the start lies 60 s before any signing),
 * so its URLs live up to 59 s past the window's end, never less.
 *
 * The variant part of a target (its query) is not in the MD5 — Tencent signs the path only —
 * and types A and D are documented without support for URLs that carry parameters of their own,
 * so variants that are query parameters (Cloud Infinite) go with types B or C (see the README).
 */
export function createTencentCdnSigner(opts: TencentCdnOptions): CdnSigner {
  const { domain, key, signParam, timeParam } = opts;
  // The parameter names are part of the URL a signature is put in.
  const signedBy = signerFingerprint(opts.type, domain, key, signParam, timeParam);
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  const withQuery = (t: OriginTarget) => (t.query ? `${t.path}?${t.query}` : t.path);
  const amp = (t: OriginTarget) => (t.query ? `${t.path}?${t.query}&` : `${t.path}?`);

  // Type A's rand only has to make the signed string differ between URLs; the path already
  // differs per object, so a rand per window is enough. It must be deterministic (a cached
  // signature is rebuilt into the URL; every node must rebuild the same bytes), so it is derived
  // from the window with an HMAC under the key: fixed within a window, unguessable across them,
  // and one HMAC per batch rather than per key. Kept for the few windows of a step.
  const rands = new Map<string, string>();
  function randOf(w: SignWindow): string {
    const id = `${w.start}:${w.end}`;
    let r = rands.get(id);
    if (r === undefined) {
      r = createHmac('sha256', key)
        .update(`signet tencent-a rand\n${w.start}\n${w.end}`)
        .digest('hex')
        .slice(0, 16);
      if (rands.size >= 256) rands.clear();
      rands.set(id, r);
    }
    return r;
  }

  switch (opts.type) {
    case 'tencent-a':
      return {
        type: opts.type,
        signedBy,
        signMany(targets, w) {
          const tail = `-${w.start}-${randOf(w)}-0-${key}`;
          return targets.map((t) => md5(`${t.path}${tail}`));
        },
        urlFor(t, s: UrlSignature) {
          return `${domain}${amp(t)}${signParam}=${s.start}-${randOf(s)}-0-${s.sig}`;
        },
      };
    case 'tencent-b':
      return {
        type: opts.type,
        signedBy,
        signMany(targets, w) {
          const head = `${key}${beijingMinute(w.start)}`;
          return targets.map((t) => md5(`${head}${t.path}`));
        },
        urlFor(t, s) {
          return `${domain}/${beijingMinute(s.start)}/${s.sig}${withQuery(t)}`;
        },
      };
    case 'tencent-c':
      return {
        type: opts.type,
        signedBy,
        signMany(targets, w) {
          const ts = w.start.toString(16);
          return targets.map((t) => md5(`${key}${t.path}${ts}`));
        },
        urlFor(t, s) {
          return `${domain}/${s.sig}/${s.start.toString(16)}${withQuery(t)}`;
        },
      };
    case 'tencent-d':
      return {
        type: opts.type,
        signedBy,
        signMany(targets, w) {
          const ts = String(w.start);
          return targets.map((t) => md5(`${key}${t.path}${ts}`));
        },
        urlFor(t, s) {
          return `${domain}${amp(t)}${signParam}=${s.sig}&${timeParam}=${s.start}`;
        },
      };
  }
}

const BEIJING_OFFSET_SECONDS = 8 * 3600;

/** Type B's timestamp: `YYYYMMDDHHMM` in UTC+8 of the first whole minute at or after `seconds`. */
export function beijingMinute(seconds: number): string {
  const minute = Math.ceil(seconds / 60) * 60;
  const d = new Date((minute + BEIJING_OFFSET_SECONDS) * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}`;
}
