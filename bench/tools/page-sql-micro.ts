// Micro-measure: the warm page's one SQL statement (100 rows), CPU per statement in this process
// and in PostgreSQL's backends, for ways of sending it, alternating, 8 in flight:
//   repo   the images repository (kysely, the gateway's path);
//   pg     the same text on a bare pg Pool with the repository's type parsers (unnamed statement);
//   array  the same, each row an array (pg's rowMode 'array': no row objects);
//   named  the same as a named prepared statement (PostgreSQL parses and plans it once per
//          connection);
//   json   the rows aggregated to one json value by PostgreSQL (json_agg of the rows), parsed by
//          JSON.parse;
//   jarr   the same with each row a json array (json_build_array of the columns);
//   one    the statement limited to one row (what a statement costs without its rows);
//   ping   `select $1`, a round trip.
// `npx tsx bench/tools/page-sql-micro.ts [statements per contender and round] [all|page]`, against
// BENCH_DATABASE_URL (default the test database): `all` reads the 14 columns, `page` the 5 that
// scenario 1's page reads. It adds 150 rows of an owner of its own and removes them at the end.
// docs/benchmarks.md, findings 31 and 36.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { pgTypes } from '../../server/src/db/pg-types.js';
import { openMicroContainer } from '../lib/micro-container.js';
import { ALL_COLUMNS, PAGE_COLUMNS, pageStatement } from '../lib/page-statement.js';

const perRound = Number(process.argv[2] ?? 3000);
const shape = process.argv[3] ?? 'all';
if (shape !== 'all' && shape !== 'page') throw new Error('usage: page-sql-micro.ts [statements] [all|page]');
const ROUNDS = 4;
const IN_FLIGHT = 8;
const { c, close } = await openMicroContainer();
const pool = new pg.Pool({
  connectionString: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  max: 10,
});
const owner = randomUUID();

const COLUMNS = shape === 'page' ? PAGE_COLUMNS : ALL_COLUMNS;
/** The row fields of those columns, for the repository (its projection). */
const FIELDS =
  shape === 'page' ? new Set(['id', 'objectKey', 'homeRegion', 'replicatedRegions'] as const) : undefined;
const PAGE = pageStatement(COLUMNS);
const PAGE_JSON = `select coalesce(json_agg(t), '[]') as j from (${PAGE}) t`;
const PAGE_JARR = `select coalesce(json_agg(json_build_array(${COLUMNS})), '[]') as j from (${PAGE}) t`;

/** CPU time of every PostgreSQL process of this machine, in clock ticks (10 ms). */
function postgresTicks(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (pid.charCodeAt(0) < 48 || pid.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (!stat.includes('(postgres)')) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks;
}

const contenders: Record<string, () => Promise<unknown>> = {
  repo: () => c.imagesRepo.listPage(owner, 100, undefined, false, FIELDS),
  pg: () => pool.query({ text: PAGE, values: [owner, 101], types: pgTypes }),
  array: () => pool.query({ text: PAGE, values: [owner, 101], types: pgTypes, rowMode: 'array' }),
  named: () => pool.query({ name: `micro_page_${shape}`, text: PAGE, values: [owner, 101], types: pgTypes }),
  json: async () => {
    const { rows } = await pool.query<{ j: Record<string, unknown>[] }>(PAGE_JSON, [owner, 101]);
    return rows[0]!.j.map((r) => ({ ...r, created_at: new Date(r.created_at as string) }));
  },
  jarr: async () => {
    const { rows } = await pool.query<{ j: unknown[][] }>(PAGE_JARR, [owner, 101]);
    // created_at is the last column: a Date, as the other contenders give it.
    for (const r of rows[0]!.j) r[r.length - 1] = new Date(r[r.length - 1] as string);
    return rows[0]!.j;
  },
  one: () => pool.query({ text: PAGE, values: [owner, 1], types: pgTypes }),
  ping: () => pool.query('select $1::int', [1]),
};

async function measure(f: () => Promise<unknown>): Promise<{ here: number; postgres: number }> {
  let left = perRound;
  const pg0 = postgresTicks();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left-- > 0) await f();
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return {
    here: (cpu.user + cpu.system) / perRound,
    postgres: ((postgresTicks() - pg0) * 10_000) / perRound,
  };
}

try {
  await pool.query(
    `insert into images (id, owner_id, object_key, content_type, byte_size, width, height, etag, created_at)
     select gen_random_uuid(), $1, 'micro/' || $1 || '/' || g, 'image/jpeg', 100000, 640, 480, 'e' || g,
            now() - g * interval '1 second'
     from generate_series(1, 150) g`,
    [owner],
  );
  for (const f of Object.values(contenders)) await measure(f); // warm-up: JIT, pool, statements
  const seen = Object.fromEntries(
    Object.keys(contenders).map((name) => [name, [] as { here: number; postgres: number }[]]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, f] of Object.entries(contenders)) seen[name]!.push(await measure(f));
  }
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  for (const [name, runs] of Object.entries(seen)) {
    process.stdout.write(
      `${name.padEnd(6)} µs of CPU per statement: here ${list(runs.map((r) => r.here))}; ` +
        `PostgreSQL ${list(runs.map((r) => r.postgres))}\n`,
    );
  }
} finally {
  await pool.query('delete from images where owner_id = $1', [owner]);
  await pool.end();
  await close();
}
