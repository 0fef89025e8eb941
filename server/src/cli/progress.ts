import type { ImportProgress } from '../images/bucket-import.js';

export interface ProgressOut {
  isTTY?: boolean;
  write(s: string): unknown;
}

/** Skip counts as `reason n, reason n`, by reason in alphabetical order (stable for scripts). */
export function skippedText(p: Pick<ImportProgress, 'skipped'>): string {
  const parts = Object.entries(p.skipped)
    .filter(([, n]) => (n ?? 0) > 0)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([reason, n]) => `${reason} ${n}`);
  return parts.length ? parts.join(', ') : 'none';
}

/**
 * The import's progress: on a terminal one line redrawn in place (objects, rate, ETA when the
 * total is known); otherwise a plain line at most every `everyMs`, so a log file gets a few lines
 * rather than one per page. The total (for the ETA) comes from a listing pass made first on a terminal.
 */
export function progressReporter(
  out: ProgressOut,
  opts: { total?: number; everyMs?: number; now?: () => number } = {},
) {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  let lastPlain = -Infinity;
  const everyMs = opts.everyMs ?? 5000;
  return (p: ImportProgress) => {
    const elapsed = (now() - started) / 1000;
    const rate = elapsed > 0 ? p.seen / elapsed : 0;
    const total = opts.total;
    const eta =
      total !== undefined && rate > 0 && total > p.seen ? ` ETA ${duration((total - p.seen) / rate)}` : '';
    const of = total !== undefined ? `/${total}` : '';
    const line = `${p.seen}${of} objects, ${p.imported} imported, skipped: ${skippedText(p)} · ${rate.toFixed(0)} obj/s${eta}`;
    if (out.isTTY) {
      out.write(`\r\x1b[2K${line}${p.done ? '\n' : ''}`);
    } else if (p.done || now() - lastPlain >= everyMs) {
      lastPlain = now();
      out.write(`${line}\n`);
    }
  };
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
