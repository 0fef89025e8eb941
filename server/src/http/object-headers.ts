/** Image types a browser only ever renders as pixels: nothing in them can run. */
const RASTER = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif']);

/**
 * Headers for user-supplied bytes served from the gateway's own origin (stream mode, the local
 * bucket): never a page. `sandbox` and `default-src 'none'` keep an SVG or HTML object from
 * running script with the app's origin (which holds the token); anything that is not a raster
 * image is a download, not a document; `nosniff` stops the browser from guessing otherwise.
 */
export function untrustedObjectHeaders(contentType: string | undefined): Record<string, string> {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return {
    'content-security-policy': "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
    'x-content-type-options': 'nosniff',
    ...(RASTER.has(type) ? {} : { 'content-disposition': 'attachment' }),
  };
}
