import type { Config } from '../config.js';
import { createContainer } from '../container.js';

/**
 * `signet orphan-sweep [--adopt]`: the sweep guard's verdict for this database and this region's
 * bucket (images/sweep-guard.ts), and with `--adopt` the release of a held sweep. Exit 0 when the
 * sweep may run (or now may), 1 while it is held.
 */
export async function runOrphanSweepCommand(
  config: Config,
  o: { adopt: boolean },
): Promise<{ line: string; code: number }> {
  const c = await createContainer(config);
  try {
    const before = await c.sweepGuard.status();
    if (o.adopt) {
      await c.sweepGuard.adopt();
      return {
        line: before.ok
          ? 'orphan sweep: was not held; this database sweeps this bucket (tokens rotated)'
          : `orphan sweep: adopted; this database sweeps this bucket from its next run (it was held: ${before.reason})`,
        code: 0,
      };
    }
    return before.ok
      ? { line: 'orphan sweep: ok (this database sweeps this bucket)', code: 0 }
      : { line: `orphan sweep: held: ${before.reason}`, code: 1 };
  } finally {
    await c.close();
  }
}
