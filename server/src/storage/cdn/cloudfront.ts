import { createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { type OriginTarget, signerFingerprint } from '../storage.js';
import type { CdnSigner } from './cdn-signer.js';

export interface CloudFrontOptions {
  /** `scheme://host[:port]` of the distribution's domain. */
  domain: string;
  /** The ID of the public key (in the distribution's key group) that verifies these URLs. */
  keyPairId: string;
  /** The matching RSA private key, PEM. */
  privateKey: string | KeyObject;
}

/**
 * CloudFront signed URLs with a canned policy: the policy names the exact URL and its expiry
 * (`DateLessThan` = the window's end), is signed with RSA-SHA1 and travels as `Expires`,
 * `Signature` (base64 with `+=/` replaced by `-_~`) and `Key-Pair-Id`. The URL is byte-identical to
 * `@aws-sdk/cloudfront-signer`'s getSignedUrl for the same URL, key and expiry (a test checks
 * thousands). A canned policy has no start time, so only the window's end reaches CloudFront.
 *
 * One RSA signature per URL: far slower than an MD5 (the bench reports it); each is made once per
 * image and step and then cached like any other signature (about 350 bytes for a 2048-bit key).
 */
export function createCloudFrontSigner(opts: CloudFrontOptions): CdnSigner {
  const key = typeof opts.privateKey === 'string' ? createPrivateKey(opts.privateKey) : opts.privateKey;
  const resourceOf = (t: OriginTarget) => `${opts.domain}${t.path}${t.query ? `?${t.query}` : ''}`;
  const tail = `&Key-Pair-Id=${encodeURIComponent(opts.keyPairId)}&Signature=`;

  return {
    type: 'cloudfront',
    signedBy: signerFingerprint(
      'cloudfront',
      opts.domain,
      opts.keyPairId,
      createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('base64'),
    ),
    signMany(targets, w) {
      return targets.map((t) => {
        const policy = JSON.stringify({
          Statement: [{ Resource: resourceOf(t), Condition: { DateLessThan: { 'AWS:EpochTime': w.end } } }],
        });
        return urlSafe(sign('sha1', Buffer.from(policy), key).toString('base64'));
      });
    },
    urlFor(t, s) {
      return `${resourceOf(t)}${t.query ? '&' : '?'}Expires=${s.end}${tail}${s.sig}`;
    },
  };
}

/** CloudFront's URL-safe base64: `+` → `-`, `=` → `_`, `/` → `~`. */
function urlSafe(b64: string): string {
  let out = '';
  for (let i = 0; i < b64.length; i++) {
    const c = b64[i]!;
    out += c === '+' ? '-' : c === '=' ? '_' : c === '/' ? '~' : c;
  }
  return out;
}
