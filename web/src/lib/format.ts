const numberFormat = new Intl.NumberFormat(undefined);
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const formatNumber = (n: number) => numberFormat.format(n);

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
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
