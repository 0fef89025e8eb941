const numberFormat = new Intl.NumberFormat(undefined);
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const formatNumber = (n: number) => numberFormat.format(n);

/**
 * A size as the gateway's messages give it: binary units named as such (KiB, MiB, GiB), so a
 * limit the app shows reads the same as the refusal it would get.
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const round = (x: number) => (x >= 10 ? Math.round(x) : Math.round(x * 10) / 10);
  // 1,048,575 bytes would round to "1024 KiB": that is 1 MiB.
  if (round(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${round(v)} ${units[i]}`;
}

/**
 * A byte count as the gateway's messages give it (server/src/lib/byte-size.ts): `2 MiB (2,097,153
 * bytes)`. The exact count stays beside the rounded one, so a refusal of a file a byte over its
 * limit does not read "2 MiB is larger than 2 MiB".
 */
export function bytesInWords(n: number): string {
  const exact = `${n.toLocaleString('en-US')} bytes`;
  return n < 1024 ? exact : `${formatBytes(n)} (${exact})`;
}

/** "JPEG, PNG or GIF": a list as a sentence names it. */
export function inWords(names: readonly string[]): string {
  return names.length < 2 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

export const formatDate = (iso: string) => dateFormat.format(new Date(iso));

export function formatRelative(iso: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  const steps: [Intl.RelativeTimeFormatUnit, number][] = [
    ['year', 31_536_000],
    ['month', 2_592_000],
    ['day', 86_400],
    ['hour', 3600],
    ['minute', 60],
  ];
  for (const [unit, size] of steps) {
    if (Math.abs(seconds) >= size) return relativeFormat.format(Math.round(seconds / size), unit);
  }
  return 'just now';
}

/** `image/png` -> `PNG`, `image/svg+xml` -> `SVG`. */
export const typeLabel = (contentType: string) =>
  (contentType.split('/')[1] ?? contentType).replace(/\+.*$/, '').toUpperCase();

/** Describes an image for people who cannot see it; the gateway keeps no captions. */
export function altText(image: {
  contentType: string;
  width?: number | null;
  height?: number | null;
  createdAt: string;
}): string {
  const size = image.width && image.height ? `, ${image.width} × ${image.height}` : '';
  return `${typeLabel(image.contentType)} image${size}, added ${formatDate(image.createdAt)}`;
}

/**
 * `image 3 of 8`: where an image sits in the gallery. It is what tells look-alike images apart to
 * a screen reader (same type, size and minute), since the gateway keeps no title or file name.
 */
export const positionText = (position: number, total: number) =>
  `image ${formatNumber(position)} of ${formatNumber(total)}`;
