import type { ImageRow } from '../db/types.js';
import type { ProxyMode, ProxyTokens, TokenScope } from './proxy-token.js';

export type { ProxyMode } from './proxy-token.js';

/** The path prefix of `/proxy/:id`, shared by the links and the route. */
export const PROXY_PREFIX = '/proxy/';

/** Stable capability links for `<img src>`: CPU only (one HMAC), no I/O. */
export interface ProxyLinks {
  /**
   * `scope`: `public` for a viewer who reads the image only because it is public; `preset`: a
   * link to that variant (the token binds it).
   */
  linkFor(image: Pick<ImageRow, 'id'>, mode: ProxyMode, scope?: TokenScope, preset?: string): string;
}

export function createProxyLinks(d: { publicUrl: string; tokens: Pick<ProxyTokens, 'sign'> }): ProxyLinks {
  return {
    linkFor(image, mode, scope = 'any', preset) {
      const token = d.tokens.sign(image.id, mode, scope, preset);
      const modePart = mode === 'stream' ? '&mode=stream' : '';
      const presetPart = preset === undefined ? '' : `&preset=${preset}`;
      return `${d.publicUrl}${PROXY_PREFIX}${image.id}?t=${token}${modePart}${presetPart}`;
    },
  };
}
