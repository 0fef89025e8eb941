import type { CdnSigner } from './cdn-signer.js';
import { createCloudFrontSigner } from './cloudfront.js';
import { createTencentCdnSigner, type TencentAuthType } from './tencent-cdn.js';

/**
 * `CDN_*` and `CLOUDFRONT_*` as config.ts parses them (its `CdnConfig` is this type): one shape
 * per kind of signer, so each carries only what its signer takes, and a type added to
 * `CDN_AUTH_TYPES` does not compile until `parseCdn` and `createCdnSigner` say what it needs.
 */
export type CdnSettings = TencentCdnSettings | CloudFrontCdnSettings;

export interface TencentCdnSettings {
  /** CDN_DOMAIN as `scheme://host[:port]` (https when no scheme is given). */
  domain: string;
  authType: TencentAuthType;
  /** CDN_AUTH_KEY: Signet signs with it. */
  authKey: string;
  /**
   * CDN_AUTH_BACKUP_KEY: the key the CDN also accepts during a rotation. Signet never signs with
   * it; it is checked at start so a rotation's configuration is validated in one place.
   */
  backupKey: string | undefined;
  /** CDN_AUTH_PARAM (types A and D): the signature parameter, default `sign`. */
  authParam: string;
  /** CDN_AUTH_TIME_PARAM (type D): the timestamp parameter, default `t`. */
  timeParam: string;
}

export interface CloudFrontCdnSettings {
  /** CDN_DOMAIN as `scheme://host[:port]`. */
  domain: string;
  authType: 'cloudfront';
  /** CLOUDFRONT_KEY_PAIR_ID and CLOUDFRONT_PRIVATE_KEY (PEM). */
  cloudfront: { keyPairId: string; privateKey: string };
}

/** The signer `CDN_AUTH_TYPE` names, from the parsed config. */
export function createCdnSigner(cdn: CdnSettings): CdnSigner {
  switch (cdn.authType) {
    case 'cloudfront':
      return createCloudFrontSigner({ domain: cdn.domain, ...cdn.cloudfront });
    case 'tencent-a':
    case 'tencent-b':
    case 'tencent-c':
    case 'tencent-d':
      return createTencentCdnSigner({
        type: cdn.authType,
        domain: cdn.domain,
        key: cdn.authKey,
        signParam: cdn.authParam,
        timeParam: cdn.timeParam,
      });
    default: {
      const unknown: never = cdn;
      throw new Error(`no CDN signer for ${String((unknown as { authType: string }).authType)}`);
    }
  }
}
