import { stat } from 'node:fs/promises';
import path from 'node:path';
import { thumbHashOf } from '../../server/src/images/thumbhash.js';
import { makePng } from '../../server/src/seed.js';
import type { GatewayProcess } from '../../server/test/support/gateway-process.js';
import type { Bench, OwnerKey } from './bench.js';
import {
  COS,
  type Endpoints,
  gatewayEnv,
  OWNERS,
  PRODUCT_NODE_FLAGS,
  productEnv,
  STREAM_OBJECT_BYTES,
  tokenFor,
} from './config.js';
import {
  analyze,
  createBenchDatabase,
  type OwnerRows,
  ownerRows,
  seedRows,
  serverVersion,
} from './database.js';
import { ROOT, run, startNode } from './processes.js';
import { BenchRedis } from './redis.js';
import { RpcChild } from './rpc.js';

/** Rebuilds server/dist when a source file is newer than the build (the gateway runs the build). */
export async function ensureBuild(log: (m: string) => void): Promise<void> {
  const main = path.join(ROOT, 'server/dist/main.js');
  const built = await stat(main).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const newer = await run('find', [
    'server/src',
    '-name',
    '*.ts',
    '-newermt',
    `@${Math.floor(built / 1000)}`,
  ]);
  if (built > 0 && newer.trim() === '') return;
  log('building server/dist (tsc -p server/tsconfig.json)…');
  // Type errors still emit JavaScript; someone else's half-finished edit must not stop the run.
  await run(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'server/tsconfig.json'], { allowFail: true });
  await stat(main);
}

/** The ceiling's modes (bench/children/ceiling-server.ts): what of the page's I/O it does. */
export type CeilingMode = 'static' | 'sql' | 'urls' | 'ping' | 'rows';

/** Scenario 1's ceiling, static or with part of the page's I/O put back (`mode`). */
export function startCeiling(
  endpoints: Endpoints,
  mode: CeilingMode,
  prof: string[] = [],
  node?: string,
): Promise<GatewayProcess> {
  return startNode(
    `ceiling-${mode}`,
    [...prof, ...PRODUCT_NODE_FLAGS, '--import', 'tsx', 'bench/children/ceiling-server.ts'],
    gatewayEnv(endpoints, { CEILING_MODE: mode, CEILING_OWNER: OWNERS.main.id }),
    node !== undefined ? { node } : {},
  );
}

/** The bare servers' settings: a 302 to a fixture URL, a relay of the fixture, Redis and SQL. */
export function bareServersEnv(e: Endpoints): Record<string, string> {
  return {
    // The same environment as the servers they are compared with.
    ...productEnv(),
    REDIRECT_LOCATION: `http://${e.cosHost}/b/bench/1.png?q-sign-algorithm=sha1&q-signature=0123456789abcdef0123456789abcdef01234567`,
    RELAY_ORIGIN: `http://${e.cosHost}`,
    REDIS_URL: e.redisUrl,
    DATABASE_URL: e.databaseUrl,
  };
}

/** Everything the gateway runs against, started and seeded; `teardown` undoes it all. */
export async function startServices(
  settings: Pick<Bench, 'quick' | 'rounds' | 'seconds' | 'log'> & { profile: boolean },
): Promise<{ bench: Bench; teardown: () => Promise<void> }> {
  const { log, profile: _, ...rest } = settings;
  // --profile: V8 CPU profiles of the gateway, the ceilings, the reference and scenario 8's
  // workers, written when they exit.
  const prof = settings.profile ? ['--cpu-prof', '--cpu-prof-dir', 'bench/results/profiles'] : [];
  const undo: (() => Promise<unknown>)[] = [];
  const teardown = async () => {
    // Idempotent: a signal may ask while the normal path is already tearing down.
    for (const u of undo.splice(0).reverse())
      await u().catch((err: Error) => log(`teardown: ${err.message}`));
  };
  try {
    const redis = await BenchRedis.start();
    undo.push(() => redis.stop());
    const redisClient = redis.client();
    undo.push(async () => redisClient.disconnect());

    const db = await createBenchDatabase();
    undo.push(() => db.drop());
    log(`database ${db.name}, redis :${redis.port}`);

    const fixture = RpcChild.start('cos-fixture.ts');
    undo.push(() => fixture.stop());
    const { host: cosHost } = await fixture.call<{ host: string }>('start', COS);

    // Rows in bulk with SQL; objects straight into the fixture's memory.
    const png = makePng(24, 16, [255, 94, 58], [0, 122, 255]);
    // The ThumbHash the product computes for it ('' for the stream objects: not an image).
    const placeholder = await thumbHashOf(png, { maxPixels: 1_000_000, timeoutSeconds: 10 });
    const small = { byteSize: png.length, contentType: 'image/png', suffix: '.png', placeholder };
    let smallEtag = '';
    for (const key of ['main', 'small', 'large'] as const) {
      const o = OWNERS[key];
      const r = await fixture.call<{ etag: string }>('seedRange', {
        prefix: `b/${o.id}/`,
        suffix: '.png',
        from: 1,
        to: o.count,
        bodyBase64: png.toString('base64'),
        contentType: 'image/png',
      });
      smallEtag = r.etag;
      await seedRows(db.url, o.id, o.count, { ...small, etag: smallEtag });
    }
    const streamKeys = Array.from(
      { length: OWNERS.stream.count },
      (_, i) => `b/${OWNERS.stream.id}/${i + 1}.bin`,
    );
    const { etag: largeEtag } = await fixture.call<{ etag: string }>('seedLarge', {
      keys: streamKeys,
      bytes: STREAM_OBJECT_BYTES,
      contentType: 'application/octet-stream',
    });
    await seedRows(db.url, OWNERS.stream.id, OWNERS.stream.count, {
      byteSize: STREAM_OBJECT_BYTES,
      etag: largeEtag,
      contentType: 'application/octet-stream',
      suffix: '.bin',
      placeholder: '',
    });
    await analyze(db.url);

    const rows = {} as Record<OwnerKey, OwnerRows>;
    const tokens = {} as Record<OwnerKey, string>;
    for (const key of Object.keys(OWNERS) as OwnerKey[]) {
      rows[key] = await ownerRows(db.url, OWNERS[key].id);
      tokens[key] = await tokenFor(OWNERS[key].id);
    }
    log(
      `seeded ${Object.values(rows)
        .reduce((n, r) => n + r.ids.length, 0)
        .toLocaleString('en-US')} images`,
    );

    const endpoints: Endpoints = { databaseUrl: db.url, redisUrl: redis.url, cosHost };
    // BENCH_GATEWAY_NODE_OPTIONS: V8/Node flags for the gateway only (tuning experiments).
    const tuning: Record<string, string> = process.env.BENCH_GATEWAY_NODE_OPTIONS
      ? { NODE_OPTIONS: process.env.BENCH_GATEWAY_NODE_OPTIONS }
      : {};
    // BENCH_GATEWAY_NODE_FLAGS: the gateway's command-line flags instead of the image's (V8 flags
    // that NODE_OPTIONS refuses, such as --heap-growing-percent); space-separated.
    const gatewayFlags =
      process.env.BENCH_GATEWAY_NODE_FLAGS !== undefined
        ? process.env.BENCH_GATEWAY_NODE_FLAGS.split(' ').filter(Boolean)
        : PRODUCT_NODE_FLAGS;
    // The servers under test start side by side; whichever started is stopped if one fails.
    const ceilingOf = (mode: CeilingMode) => startCeiling(endpoints, mode, prof);
    // The interpreted gateway and the ceiling's parts serve scenario 1's decomposition, which a
    // quick run leaves out: starting them took ~9 s of a quick run's 3 minutes on 2 cores.
    const full = !settings.quick;
    const settled = await Promise.allSettled([
      startNode('gateway', [...prof, ...gatewayFlags, 'server/dist/main.js'], gatewayEnv(endpoints, tuning)),
      ceilingOf('static'),
      startNode(
        'bare-servers',
        ['--import', 'tsx', 'bench/children/bare-servers.ts'],
        bareServersEnv(endpoints),
      ),
      startNode(
        'reference',
        [...prof, '--import', 'tsx', 'bench/children/reference-server.ts'],
        gatewayEnv(endpoints),
      ),
      ...(full
        ? [
            ceilingOf('sql'),
            ceilingOf('urls'),
            startNode(
              'gateway-interpreted',
              [...prof, ...gatewayFlags, 'server/dist/main.js'],
              gatewayEnv(endpoints, { ...tuning, GRAPHQL_JIT: 'false' }),
            ),
          ]
        : []),
    ]);
    for (const s of settled) if (s.status === 'fulfilled') undo.push(() => s.value.stop());
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [gateway, ceiling, bare, reference, ceilingSql, ceilingUrls, interpreted] = settled.map(
      (s) => (s as PromiseFulfilledResult<GatewayProcess>).value,
    ) as [
      GatewayProcess,
      GatewayProcess,
      GatewayProcess,
      GatewayProcess,
      GatewayProcess | undefined,
      GatewayProcess | undefined,
      GatewayProcess | undefined,
    ];
    const loadgen = RpcChild.start('loadgen.ts');
    undo.push(() => loadgen.stop());

    const bench: Bench = {
      ...rest,
      log,
      profileFlags: prof,
      endpoints,
      redis,
      redisClient,
      databaseUrl: db.url,
      gateway,
      ceiling,
      ceilingParts: ceilingSql && ceilingUrls ? { sql: ceilingSql, urls: ceilingUrls } : undefined,
      bare,
      reference,
      interpreted,
      fixture,
      loadgen,
      tokens,
      rows,
      versions: {
        node: process.version,
        redis: /^redis_version:(.+)$/m.exec(await redisClient.info('server'))?.[1]?.trim() ?? '?',
        postgres: await serverVersion(db.url),
      },
      rssSamples: [],
      heapSamples: [],
    };
    return { bench, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}
