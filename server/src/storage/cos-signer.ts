import { createHmac } from 'node:crypto';
import { BoundedMap } from '../lib/bounded-map.js';
import { digest, fixedHmac } from '../lib/fixed-hmac.js';
import { cosProcessing } from './cos-processing.js';
import { OBJECT_CACHE_CONTROL, type SignWindow, type UrlSignature } from './storage.js';
import type { Variant } from './variant.js';

export interface CosSignerOptions {
  secretId: string;
  secretKey: string;
  /** The Host header value of the presigned URLs; it is signed, so a URL only works for that host. */
  host: string;
}

export interface CosSigner {
  /**
   * One signature (hex) per key, all for the same window; `variants[i]`, when present, is the
   * variant of `keys[i]`, whose processing parameter the signature then covers too.
   */
  signMany(
    keys: readonly string[],
    window: SignWindow,
    variants?: readonly (Variant | undefined)[],
  ): string[];
  /** The query string of a presigned GET URL (without the leading `?`), of the variant if given. */
  query(key: string, signature: UrlSignature, variant?: Variant): string;
}

/** The COS SDK's URL encoding (util.js camSafeUrlEncode): encodeURIComponent plus !'()*. */
export function camSafeUrlEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * The one request parameter every URL carries and signs (HttpParameters and the URL hold the same
 * bytes: a lower-case name and the encoded value). COS answers a signed GET with it as the
 * response's Cache-Control, for every object, also ones Signet did not upload; because it is
 * signed, a URL with it changed or removed is refused with 403.
 */
const CACHE_PARAM_NAME = 'response-cache-control';
const CACHE_PARAM = `${CACHE_PARAM_NAME}=${camSafeUrlEncode(OBJECT_CACHE_CONTROL)}`;

/** The pieces of one variant's URL and HttpString, built once per variant key. */
interface VariantParts {
  /** HttpParameters: `<encoded, lower-cased processing>=&response-cache-control=…`. */
  params: string;
  /** q-url-param-list's value as the URL carries it (encoded once more, like the SDK's URLs). */
  paramList: string;
  /** The processing parameter in the URL: its encoded name and an empty value. */
  urlParam: string;
}

/** Characters of a SHA-1 in hex. */
const HEX_SHA1 = 40;

/** Distinct variants are a handful of presets (or a client's transforms): a small memo. */
const MAX_MEMO = 1024;
/**
 * Signing windows kept derived: a step's offsets (16) for the step ending and the next, and room
 * for off-grid ones (one a second while requests need them), which push out the oldest first.
 */
const MAX_WINDOWS = 64;

/**
 * COS "request signature" (q-sign-algorithm=sha1) for presigned GETs, computed like
 * COS.getAuthorization({ Method: 'get', Key, KeyTime, Headers: { host },
 * Query: { 'response-cache-control': OBJECT_CACHE_CONTROL } }) — with, for a variant, its
 * Cloud Infinite processing (`cos-processing.ts`) as one more Query entry with an empty value —
 * but with the SignKey derived once per window (and kept): per key only one SHA-1 and one HMAC remain, both
 * one-shot digests (lib/fixed-hmac.ts).
 *
 * How the processing takes part (Tencent's request-signature document, and the SDK's getAuth):
 * every signed parameter name is lower-cased and URL-encoded (its slashes become `%2f`), the
 * value (empty) encoded, the pairs sorted by name; `imagemogr2…` sorts before `response-…`. The
 * URL carries the same name encoded but not lower-cased, with `=` and no value, as the SDK's
 * getObjectUrl writes it. A URL whose processing was edited, added to or dropped no longer
 * matches its signature: COS answers 403.
 */
export function createCosSigner(opts: CosSignerOptions): CosSigner {
  // The signed param and the one signed header (host) are the same for every key, so everything
  // after the path in the HttpString, and the query's fixed pieces, are built once.
  const hostLine = `\nhost=${camSafeUrlEncode(opts.host)}\n`;
  const tail = `\n${CACHE_PARAM}${hostLine}`;
  const queryHead = `q-sign-algorithm=sha1&q-ak=${encodeURIComponent(opts.secretId)}&q-sign-time=`;
  const queryTail = `&q-header-list=host&q-url-param-list=${CACHE_PARAM_NAME}&q-signature=`;
  const memo = new Map<string, VariantParts & { tail: string }>();

  function partsOf(v: Variant): VariantParts & { tail: string } {
    let parts = memo.get(v.key);
    if (parts) return parts;
    const processing = cosProcessing(v);
    const signedName = camSafeUrlEncode(processing).toLowerCase();
    const params = `${signedName}=&${CACHE_PARAM}`;
    parts = {
      params,
      tail: `\n${params}${hostLine}`,
      // The SDK's getObjectUrl encodes the list once more ("for Cloud Infinite URLs"): in a query
      // every q-* value is URL-encoded, and the list's entries are the encoded names.
      paramList: encodeURIComponent(`${signedName};${CACHE_PARAM_NAME}`).toLowerCase(),
      urlParam: `${camSafeUrlEncode(processing)}=`,
    };
    if (memo.size >= MAX_MEMO) memo.clear();
    memo.set(v.key, parts);
    return parts;
  }

  /**
   * The StringToSign's HMAC per KeyTime: its SignKey and padded buffers, derived once per window.
   * A page signs in as many windows as the grid has offsets (up to 16, each a batch of a few
   * keys), and did this derivation for each of them on every cold page (docs/benchmarks.md,
   * finding 33). A step's windows and a few off-grid ones are all that is live at a time.
   */
  const hmacs = new BoundedMap<string, (tail: string) => string>(MAX_WINDOWS);
  function hmacOf(keyTime: string): (tail: string) => string {
    let hmac = hmacs.get(keyTime);
    if (hmac) return hmac;
    const signKey = createHmac('sha1', opts.secretKey).update(keyTime).digest('hex');
    // StringToSign: `sha1\n<KeyTime>\n<SHA-1 of the HttpString>\n`, its head the same per window.
    hmac = fixedHmac('sha1', signKey, `sha1\n${keyTime}\n`, HEX_SHA1 + 1);
    hmacs.set(keyTime, hmac);
    return hmac;
  }

  return {
    signMany(keys, window, variants) {
      const hmac = hmacOf(`${window.start};${window.end}`);
      const out = new Array<string>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const v = variants?.[i];
        out[i] = hmac(`${digest('sha1', `get\n/${keys[i]}${v ? partsOf(v).tail : tail}`, 'hex')}\n`);
      }
      return out;
    },

    query(_key, s, variant) {
      const time = `${s.start};${s.end}`;
      // The params go after the signature fields, where the SDK's getObjectUrl puts its Query
      // (sorted: the processing first).
      if (!variant) return `${queryHead}${time}&q-key-time=${time}${queryTail}${s.sig}&${CACHE_PARAM}`;
      const p = partsOf(variant);
      return (
        `${queryHead}${time}&q-key-time=${time}&q-header-list=host&q-url-param-list=${p.paramList}` +
        `&q-signature=${s.sig}&${p.urlParam}&${CACHE_PARAM}`
      );
    },
  };
}
