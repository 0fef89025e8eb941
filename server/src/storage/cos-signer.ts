import { createHash, createHmac } from 'node:crypto';
import type { SignWindow, UrlSignature } from './storage.js';

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
 * COS "request signature" (q-sign-algorithm=sha1) for presigned GETs, computed like
 * COS.getAuthorization({ Method: 'get', Key, KeyTime, Headers: { host } }) but with the SignKey
 * derived once per batch: per key only one SHA-1 and one HMAC remain.
 */
export function createCosSigner(opts: CosSignerOptions): CosSigner {
  // No url params are signed, and the only signed header is host: both parts are fixed.
  const tail = `\n\nhost=${camSafeUrlEncode(opts.host)}\n`;
  const ak = encodeURIComponent(opts.secretId);

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
      return (
        `q-sign-algorithm=sha1&q-ak=${ak}&q-sign-time=${time}&q-key-time=${time}` +
        `&q-header-list=host&q-url-param-list=&q-signature=${s.sig}`
      );
    },
  };
}
