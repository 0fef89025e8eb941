const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/**
 * A byte count as a person reads it in a message: `20 MiB (20,971,520 bytes)`, `1.5 KiB (1,536
 * bytes)`, `512 bytes`. The exact count stays beside the rounded one: a limit is compared with a
 * file's size, which a file manager may show in either unit.
 */
export function bytesInWords(n: number): string {
  const exact = `${n.toLocaleString('en-US')} bytes`;
  if (n < 1024) return exact;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  let rounded = Math.round(value * 10) / 10;
  // 1,048,575 bytes round to 1024 KiB: that is 1 MiB.
  if (rounded >= 1024 && unit < UNITS.length - 1) {
    rounded = Math.round((value / 1024) * 10) / 10;
    unit++;
  }
  return `${rounded.toFixed(Number.isInteger(rounded) ? 0 : 1)} ${UNITS[unit]} (${exact})`;
}
