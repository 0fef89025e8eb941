// What the tools under bench/tools share: a timestamped log line, per-round ratios as they print
// them, and the refusal of gateway flag overrides when a tool starts gateways of its own.
import { median } from './stats.js';

/** A line with the time of day (UTC), as the tools print their progress and results. */
export function toolLog(m: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
}

/** Per-round ratios: their median and each round's, in percent (`72% [70 72 75]`). */
export function ratios(xs: readonly number[]): string {
  return `${(median(xs) * 100).toFixed(0)}% [${xs.map((x) => (x * 100).toFixed(0)).join(' ')}]`;
}

/**
 * A tool that starts gateways of its own runs them with the product's flags and no NODE_OPTIONS:
 * the bench's gateway, which it compares them with, must run the same.
 */
export function requireProductFlags(tool: string): void {
  if (
    process.env.BENCH_GATEWAY_NODE_FLAGS !== undefined ||
    process.env.BENCH_GATEWAY_NODE_OPTIONS !== undefined
  ) {
    throw new Error(
      `${tool} compares gateways with the product flags: unset BENCH_GATEWAY_NODE_FLAGS/OPTIONS`,
    );
  }
}
