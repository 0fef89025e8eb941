import {
  CountingProxy,
  isWriteBack,
  type Turn,
  type UrlWrite,
} from '../../server/test/support/counting-proxy.js';
import { type Bench, fetchPage, metricSum, type Section } from '../lib/bench.js';
import { gatewayEnv, GATEWAY_GRID as grid, PRODUCT_NODE_FLAGS } from '../lib/config.js';
import { sleep, startNode } from '../lib/processes.js';

/**
 * Turns that carry a page's own work (the read, the write-back, the refresh event of newly signed
 * URLs); anything else is the once-a-second background flush of access counts and stats.
 */
function classify(turns: Turn[]) {
  let reads = 0;
  let writes = 0;
  let publishes = 0;
  let background = 0;
  /** Turns of this gateway's refresh sweeps storing a step's URLs (not a page's). */
  let sweeps = 0;
  const commands: Record<string, number> = {};
  let pageTurns = 0;
  /** Each URL script call (a page's write-back or a sweep's): its first image, size and kind. */
  const urlWrites: UrlWrite[] = [];
  for (const t of turns) {
    for (const [c, n] of Object.entries(t.commands)) commands[c] = (commands[c] ?? 0) + n;
    const read = Boolean(t.commands['mget']);
    // The write-back: one script call, the URLs, the schedule and the new-URL set. It leaves
    // after the page's answer, so the next page's MGET may share its turn (one round trip).
    const write = isWriteBack(t);
    if (read) reads++;
    if (write) writes++;
    urlWrites.push(...t.urlWrites);
    if (read || write) pageTurns++;
    else if (t.urlWrites.length > 0) sweeps++;
    else if (t.commands['publish']) publishes++;
    else background++;
  }
  // A page's own round trips: the read and the write-back. The refresh event's PUBLISH is sent
  // with the write-back (ahead of it, in the same socket write) and not awaited; it is counted
  // on its own when it left separately.
  return { reads, writes, publishes, background, sweeps, commands, pageTurns, urlWrites };
}

/**
 * Scenario 2: a second gateway whose Redis and PostgreSQL connections run through counting
 * proxies (so the main gateway's numbers carry no proxy cost). One client, sequential requests:
 * Redis round trips and SQL statements per page, read off the wire.
 */
export async function roundTrips(b: Bench): Promise<Section> {
  const redisUrl = new URL(b.endpoints.redisUrl);
  const dbUrl = new URL(b.endpoints.databaseUrl);
  const redisProxy = await CountingProxy.start('redis', redisUrl.hostname, Number(redisUrl.port));
  const pgProxy = await CountingProxy.start('postgres', dbUrl.hostname, Number(dbUrl.port || 5432));
  const proxiedDb = new URL(dbUrl);
  proxiedDb.host = `127.0.0.1:${pgProxy.port}`;
  const gateway = await startNode(
    'counting-gateway',
    [...PRODUCT_NODE_FLAGS, 'server/dist/main.js'],
    gatewayEnv({
      ...b.endpoints,
      redisUrl: `redis://127.0.0.1:${redisProxy.port}`,
      databaseUrl: proxiedDb.toString(),
    }),
  );
  try {
    const n = b.quick ? 50 : 200;
    // Warm: the first page of the 10k set, cached by one request beforehand.
    const cachedAt = Date.now();
    // The page's own ids, as it answered (not the seeded order: a scenario may have added rows).
    const pageIds = await fetchPage(gateway.url, b.tokens.main, 100);
    await sleep(1200); // let the access flush of that request pass
    // What the gateway itself says of the warm pages: a write-back of hits would show as misses,
    // and a read that failed or was skipped by the breaker as a fallback (urls/guarded-cache.ts).
    const said = async () => ({
      misses: await metricSum(gateway.url, 'signet_url_cache_misses_total'),
      fallbacks: await metricSum(gateway.url, 'signet_redis_fallbacks_total'),
    });
    const saidBefore = await said();
    redisProxy.reset();
    pgProxy.reset();
    const t0 = Date.now();
    for (let i = 0; i < n; i++) await fetchPage(gateway.url, b.tokens.main, 100);
    const warmSeconds = (Date.now() - t0) / 1000;
    // What crossed the wire for the pages, taken before /metrics is asked again: a scrape
    // refreshes the dependency gauges, one SQL statement and a Redis PING (run BD counted them).
    const warm = classify(redisProxy.turns);
    const warmSql = pgProxy.executed;
    const warmStatements = Object.fromEntries(pgProxy.statements);
    const saidAfter = await said();
    // Each image's URL changes once per grid step, at its own moment: a page asked while one of
    // its images' steps turns signs that image's next URL (one write-back). Those are the page's
    // rightful extra round trips, not misses of the cache. Counted from the caching request, not
    // from the first measured page: a step that turned in the pause between them also leaves its
    // URL to be signed by a measured page (run J: 1 write-back counted against 0 turns).
    const cachedS = Math.floor(cachedAt / 1000);
    const endS = Math.floor(Date.now() / 1000);
    const turned = pageIds.filter((id) => grid.stepStart(id, endS) !== grid.stepStart(id, cachedS));
    const stepTurns = turned.length;

    // Cold: the cache emptied, then n distinct pages of the 100k set.
    await b.redisClient.flushdb();
    await sleep(1200);
    redisProxy.reset();
    pgProxy.reset();
    const t1 = Date.now();
    for (let i = 0; i < n; i++)
      await fetchPage(gateway.url, b.tokens.large, 100, b.rows.large.cursors[i * 100 + 99]);
    const coldSeconds = (Date.now() - t1) / 1000;
    await redisProxy.settled(); // the last page's write-back leaves after its answer
    const cold = classify(redisProxy.turns);
    const coldSql = pgProxy.executed;
    const coldStatements = Object.fromEntries(pgProxy.statements);

    const warmTrips = warm.pageTurns / n;
    // One MGET per page, and a write-back only for a step that turned (at most one per image).
    const warmPass = warm.reads === n && warm.writes <= stepTurns;
    const coldTrips = cold.pageTurns / n;
    const sqlPerPage = Math.max(warmSql, coldSql) / n;
    b.log(`  warm ${warmTrips} trips/page, cold ${coldTrips} trips/page, ${sqlPerPage} SQL/page`);
    const bg = (c: ReturnType<typeof classify>, s: number) =>
      `${c.background} background turns in ${s.toFixed(1)} s (access/stats flush, once a second, not per page)${c.sweeps ? ` and ${c.sweeps} refresh sweep store(s)` : ''}`;
    return {
      id: '2',
      title: 'Round trips per page',
      rows: [
        {
          id: '2',
          what: 'Redis round trips per warm page',
          figure: `${warmTrips.toFixed(3)} (${n} pages, ${warm.reads} MGETs; ${warm.writes} write-back(s) for the ${stepTurns} image(s) of the page whose grid step turned during the run; commands: ${JSON.stringify(warm.commands)})`,
          target: '= 1 (+ a write-back per step turn)',
          pass: warmPass,
        },
        {
          id: '2',
          what: 'Redis round trips per cold page (the read and the write-back)',
          figure: `${coldTrips.toFixed(2)} (${cold.reads} MGETs and ${cold.writes} write-backs for ${n} pages; the pages' ${cold.commands['publish'] ?? 0} refresh-event PUBLISHes, not awaited, went out in the write-back's flight except ${cold.publishes}; commands: ${JSON.stringify(cold.commands)})`,
          target: '≤ 2',
          pass: coldTrips <= 2,
        },
        {
          id: '2',
          what: 'SQL statements per page',
          figure: `warm ${(warmSql / n).toFixed(2)}, cold ${(coldSql / n).toFixed(2)}`,
          target: '= 1',
          pass: warmSql === n && coldSql === n,
        },
      ],
      details: {
        pages: n,
        warm: {
          ...warm,
          sql: warmSql,
          statements: warmStatements,
          seconds: warmSeconds,
          turned,
          // Each write-back's first image: on the page? its step at the caching request and at
          // the end; how many URLs it stored, and whether a refresh sweep wrote it (run AF and the
          // partial run of 2026-12-05 05:20 in docs/benchmarks-history.md: one write-back against
          // no step turn). The gateway's own counts tell a page that missed from a failed cache
          // read.
          written: warm.urlWrites.map((w) => ({
            ...w,
            onPage: pageIds.includes(w.id),
            stepAtCaching: grid.stepStart(w.id, cachedS),
            stepAtEnd: grid.stepStart(w.id, endS),
          })),
          gatewayMisses: saidAfter.misses - saidBefore.misses,
          gatewayFallbacks: saidAfter.fallbacks - saidBefore.fallbacks,
        },
        cold: { ...cold, sql: coldSql, statements: coldStatements, seconds: coldSeconds },
      },
      notes: [
        `Counted on the wire by TCP proxies in front of Redis and PostgreSQL (a Redis round trip is a run of client bytes between two server replies; SQL statements are Query/Execute messages). Warm: ${bg(warm, warmSeconds)}; cold: ${bg(cold, coldSeconds)}.`,
      ],
    };
  } finally {
    await gateway.stop();
    await redisProxy.close();
    await pgProxy.close();
  }
}
