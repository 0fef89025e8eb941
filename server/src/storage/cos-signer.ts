import { createHash, createHmac } from 'node:crypto';
import { OBJECT_CACHE_CONTROL, type SignWindow, type UrlSignature } from './storage.js';

export interface CosSignerOptions {
  secretId: string;
  secretKey: string;
  /** The Host header value of the presigned URLs; it is signed, so a URL only works for that host. */
  host: string;
}

export interface CosSigner {
  /** One signature (hex) per key, all for the same window. */
  signMany(keys: readonly string[], window: SignWindow): string[];
  /** The query string of a presigned GET URL (without the leading `?`). */
  query(key: string, signature: UrlSignature): string;
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

/**
 * COS "request signature" (q-sign-algorithm=sha1) for presigned GETs, computed like
 * COS.getAuthorization({ Method: 'get', Key, KeyTime, Headers: { host },
 * Query: { 'response-cache-control': OBJECT_CACHE_CONTROL } }) but with the SignKey derived once
 * per batch: per key only one SHA-1 and one HMAC remain.
 */
export function createCosSigner(opts: CosSignerOptions): CosSigner {
  // The signed param and the one signed header (host) are the same for every key, so everything
  // after the path in the HttpString, and the query's fixed pieces, are built once.
  const tail = `\n${CACHE_PARAM}\nhost=${camSafeUrlEncode(opts.host)}\n`;
  const queryHead = `q-sign-algorithm=sha1&q-ak=${encodeURIComponent(opts.secretId)}&q-sign-time=`;
  const queryTail = `&q-header-list=host&q-url-param-list=${CACHE_PARAM_NAME}&q-signature=`;

  return {
    signMany(keys, window) {
      const keyTime = `${window.start};${window.end}`;
      const signKey = createHmac('sha1', opts.secretKey).update(keyTime).digest('hex');
      const head = `sha1\n${keyTime}\n`;
      return keys.map((key) => {
        const digest = createHash('sha1').update(`get\n/${key}${tail}`).digest('hex');
        return createHmac('sha1', signKey).update(`${head}${digest}\n`).digest('hex');
      });
    },

    query(_key, s) {
      const time = `${s.start};${s.end}`;
      // The param goes after the signature fields, where the SDK's getObjectUrl puts its Query.
      return `${queryHead}${time}&q-key-time=${time}${queryTail}${s.sig}&${CACHE_PARAM}`;
    },
  };
}
