import { thumbHashToDataURL } from 'thumbhash';

/** The last hashes painted, oldest first (a Map keeps insertion order). */
const painted = new Map<string, string | undefined>();
const PAINTED_MAX = 1000;

/**
 * An image's ThumbHash (the gateway's `placeholder`, base64) as a `data:` URL to paint while the
 * picture loads. A broken hash gives undefined (paint nothing) rather than an exception: a
 * placeholder is never worth breaking the image for.
 */
export function placeholderDataUrl(hash: string | null | undefined): string | undefined {
  if (!hash) return undefined;
  const known = painted.get(hash);
  if (known !== undefined || painted.has(hash)) return known;
  let url: string | undefined;
  try {
    const bytes = Uint8Array.from(atob(hash), (c) => c.charCodeAt(0));
    url = thumbHashToDataURL(bytes);
  } catch {
    url = undefined;
  }
  // Remembered: a windowed list mounts the same images again and again as it scrolls, and
  // painting a hash (decode, then PNG-encode) is a millisecond or two each time.
  if (painted.size >= PAINTED_MAX) painted.delete(painted.keys().next().value as string);
  painted.set(hash, url);
  return url;
}
