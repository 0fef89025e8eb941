import type { CdnAuthType, CdnSigner } from './cdn-signer.js';
import { createCloudFrontSigner } from './cloudfront.js';
import { createTencentCdnSigner } from './tencent-cdn.js';

/** What the signers need of `CDN_*` and `CLOUDFRONT_*` (config.ts's `CdnConfig` has it all). */
export interface CdnSignerSettings {
  domain: string;
  authType: CdnAuthType;
  authKey: string;
  authParam: string;
  timeParam: string;
  cloudfront: { keyPairId: string; privateKey: string } | undefined;
}

/** The signer `CDN_AUTH_TYPE` names, from the parsed config. */
export function createCdnSigner(cdn: CdnSignerSettings): CdnSigner {
  if (cdn.authType === 'cloudfront') {
    // The config only yields `cloudfront` with its key pair parsed.
    const cf = cdn.cloudfront!;
    return createCloudFrontSigner({ domain: cdn.domain, keyPairId: cf.keyPairId, privateKey: cf.privateKey });
  }
  return createTencentCdnSigner({
    type: cdn.authType,
    domain: cdn.domain,
    key: cdn.authKey,
    signParam: cdn.authParam,
    timeParam: cdn.timeParam,
  });
}
