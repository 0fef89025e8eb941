import { thumbHashToDataURL } from 'thumbhash';

/**
 * An image's ThumbHash (the gateway's `placeholder`, base64) as a `data:` URL to paint while the
 * picture loads. A broken hash gives undefined (paint nothing) rather than an exception: a
 * placeholder is never worth breaking the image for.
 */
export function placeholderDataUrl(hash: string | null | undefined): string | undefined {
  if (!hash) return undefined;
  try {
    const bytes = Uint8Array.from(atob(hash), (c) => c.charCodeAt(0));
    return thumbHashToDataURL(bytes);
  } catch {
    return undefined;
  }
}
