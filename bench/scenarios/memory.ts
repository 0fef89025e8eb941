import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  defaultPgliteTemplate,
  initPgliteCluster,
  isPgliteTemplate,
} from '../../server/src/db/pglite-init.js';
import { type Bench, fetchPage, PAGE_QUERY, type Section } from '../lib/bench.js';
import { GATEWAY_KEYS as k, productEnv, productEnvOverInherited } from '../lib/config.js';
import { memoryOf, sleep, startNode } from '../lib/processes.js';
import { infoNumber } from '../lib/redis.js';
import { mean } from '../lib/stats.js';

/**
 * Scenario 10a/b: Redis bytes per cached URL (MEMORY USAGE of the URL keys, and everything the
 * cache keeps per image divided by the images) and the gateway's RSS under scenario 1.
 */
export async function memory(b: Bench): Promise<Section> {
  const r = b.redisClient;
  await r.flushdb();
  await sleep(1200);
  const before = await infoNumber(r, 'memory', 'used_memory');
  // Every page of the 10k set once: 10,000 URLs signed and cached.
  const main = b.rows.main;
  for (let i = 0; i < main.ids.length; i += 100) {
    await fetchPage(b.gateway.url, b.tokens.main, 100, i === 0 ? undefined : main.cursors[i - 1]);
  }
  await sleep(1500); // the access flush (live/hot sets) lands once a second
  const after = await infoNumber(r, 'memory', 'used_memory');
  const sample = main.ids.filter((_, i) => i % 20 === 0);
  const usage = async (keys: string[]) => {
    const p = r.pipeline();
    for (const key of keys) p.memory('USAGE', key, 'SAMPLES', '0');
    const out = (await p.exec()) ?? [];
    return out.map(([err, v]) => (err ? Number.NaN : Number(v)));
  };
  const urlBytes = mean(await usage(sample.map((id) => k.url(id))));
  const metaBytes = mean(await usage(sample.map((id) => k.meta(id))));
  const zsets = (await usage([k.schedule, k.live, k.hot])).reduce((a, x) => a + x, 0);
  const perImageTotal = (after - before) / main.ids.length;
  const value = await r.get(k.url(main.ids[0]!));

  const rssMax = Math.max(...b.rssSamples);
  const heapMax = Math.max(0, ...b.heapSamples.map((h) => h.totalMiB));
  const { peakMiB } = await memoryOf(b.gateway.pid);
  b.log(
    `  ${urlBytes.toFixed(0)} B/URL key, ${perImageTotal.toFixed(0)} B/image in all; gateway RSS ${rssMax.toFixed(0)} MiB`,
  );
  return {
    id: '10',
    title: 'Memory',
    rows: [
      {
        id: '10a',
        what: 'Redis bytes per cached URL (MEMORY USAGE, 500 keys)',
        figure: `${urlBytes.toFixed(0)} B (key + value + expiry); all per-image state (URL, schedule/live/hot/new sets): ${perImageTotal.toFixed(0)} B`,
        target: '≤ 200 B',
        pass: urlBytes <= 200,
      },
      b.rssSamples.length > 0
        ? {
            id: '10b',
            what: 'Gateway RSS under scenario 1',
            figure: `${rssMax.toFixed(0)} MiB max (${b.rssSamples.length} samples; V8 heap up to ${heapMax.toFixed(0)} MiB of it); peak over the whole run so far ${peakMiB.toFixed(0)} MiB`,
            target: '≤ 250 MB',
            pass: rssMax * 1.048576 <= 250,
          }
        : {
            id: '10b',
            what: 'Gateway RSS under scenario 1',
            figure: 'not measured (scenario 1 did not run)',
            target: '≤ 250 MB',
            pass: null,
          },
    ],
    details: {
      urlKeyBytes: urlBytes,
      metaHashBytes: metaBytes,
      sortedSetsBytesPerImage: zsets / main.ids.length,
      usedMemoryDeltaPerImage: perImageTotal,
      sampleValue: value,
      sampleValueBytes: value?.length,
      gatewayRssMiB: {
        max: rssMax,
        samples: b.rssSamples.length,
        peakSoFar: peakMiB,
        heapAfterRuns: b.heapSamples,
      },
    },
  };
}

/** Scenario 10c: `npm start`'s embedded mode (PGlite, in-process cache, local driver) from cold. */
export async function embeddedStart(settings: Pick<Bench, 'log'>): Promise<Section> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-bench-embedded-'));
  try {
    // A build leaves the cluster template that a first start copies (server/src/db/pglite-init.ts);
    // without one, the first start runs initdb in a child process.
    const fromTemplate = isPgliteTemplate(defaultPgliteTemplate());
    const t = Date.now();
    // As `npm start` runs it: with the server's environment (PRODUCT_ENV) but without its V8 flags
    // (PRODUCT_NODE_FLAGS), which cost the embedded start ~40 MiB of peak RSS when it was measured
    // with glibc's default arenas (480-515 against 432-459 MiB, 2026-12-01 18:10 UTC).
    const gw = await startNode('embedded', ['server/dist/main.js'], {
      ...productEnv(),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    });
    const readyMs = Date.now() - t;
    const atReady = await memoryOf(gw.pid);
    // One page of the demo images (auth is off in this mode: the demo admin).
    const res = await fetch(`${gw.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: PAGE_QUERY, variables: { first: 8 } }),
    });
    if (!res.ok) throw new Error(`embedded page query answered ${res.status}`);
    await res.text();
    const afterPage = await memoryOf(gw.pid);
    await gw.stop();
    // A first start without the build's template runs initdb in a child process that exits
    // before the gateway opens the database: its own peak, measured the same way on a fresh dir.
    // The child inherits its server's environment, here the bench's: given PRODUCT_ENV for it.
    const initPeakMiB = (
      await withEnv(productEnvOverInherited(), () =>
        initPgliteCluster(path.join(dataDir, 'initdb-alone'), null),
      )
    )?.childPeakMiB;
    const how = fromTemplate
      ? "the cluster copied from the build's template, no child process"
      : "no build's template: initdb in a child process first";
    settings.log(
      `  embedded: ready in ${readyMs} ms, peak RSS ${afterPage.peakMiB.toFixed(0)} MiB (${how}); initdb child alone: ${initPeakMiB?.toFixed(0)} MiB`,
    );
    return {
      id: '10c',
      title: 'Embedded start',
      rows: [
        {
          id: '10c',
          what: 'Embedded start (PGlite, first start: migrations + demo seed) peak RSS',
          figure: `${afterPage.peakMiB.toFixed(0)} MiB peak (ready in ${(readyMs / 1000).toFixed(1)} s; RSS ${atReady.rssMiB.toFixed(0)} MiB at ready; ${how}); a first start without the build's template (initdb in a child process first): the child ${initPeakMiB?.toFixed(0)} MiB peak`,
          // With the build's template a first start is one process; without it the initdb child
          // peaks above the target (reported beside it).
          target: '≤ 500 MiB (every process of a first start from a build)',
          pass: fromTemplate && afterPage.peakMiB <= 500,
        },
      ],
      details: { readyMs, atReady, afterPage, fromTemplate, initdbChildPeakMiB: initPeakMiB },
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Runs `fn` with `vars` in this process's environment (undefined: unset), then puts it back. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}
