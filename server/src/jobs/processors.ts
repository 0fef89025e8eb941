import type { Clock } from '../clock.js';
import type { DeletedRowPurge } from '../images/deleted-row-purge.js';
import type { DerivedVariants } from '../images/derived-variants.js';
import type { OrphanSweeper } from '../images/orphan-sweep.js';
import type { Placeholders } from '../images/placeholders.js';
import { type PreloadDeps, preloadIds } from '../images/preload.js';
import type { ReplicationCheck } from '../images/replication-check.js';
import { WORKER_STALE_MS } from '../stats/heartbeat.js';
import { dayOf, type StatsStore } from '../stats/stats-store.js';
import type { Refresher } from '../urls/refresher.js';
import type { Processors } from './job-engine.js';

/** The background work itself, whichever engine (BullMQ or in-process timers) runs it. */
export function createProcessors(d: {
  refresher: Refresher;
  preload: PreloadDeps;
  stats: Pick<StatsStore, 'rollup'>;
  orphans: Pick<OrphanSweeper, 'sweep'>;
  placeholders: Pick<Placeholders, 'backfill'>;
  /** Only where variants are derived objects (the s3 driver). */
  derivedVariants: Pick<DerivedVariants, 'makeById' | 'backfill'> | undefined;
  /** Several regions without REPLICATION_DELAY_SECONDS; undefined otherwise. */
  replication?: Pick<ReplicationCheck, 'run'> | undefined;
  deletedRows: Pick<DeletedRowPurge, 'run'>;
  clock: Clock;
}): Processors {
  return {
    refreshSweep: () => d.refresher.sweep(),
    observe: () => d.refresher.observe(),
    statsRollup: () => d.stats.rollup(dayOf(d.clock.now()), d.clock.now() - WORKER_STALE_MS * 4),
    preload: (ids) => preloadIds(d.preload, ids),
    orphanSweep: () => d.orphans.sweep(),
    placeholderBackfill: () => d.placeholders.backfill(),
    makeVariants: async (id) => (d.derivedVariants ? d.derivedVariants.makeById(id) : 'none'),
    variantsBackfill: async () => d.derivedVariants?.backfill(),
    replicationCheck: () =>
      d.replication ? d.replication.run() : Promise.resolve({ checked: 0, replicated: 0 }),
    deletedRowPurge: () => d.deletedRows.run(),
  };
}
