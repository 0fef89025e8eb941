// Micro-measure: CPU per warm URL of UrlService.resolveMany (one MGET of 100 cached URLs), in
// process against the local Redis (and PostgreSQL: BENCH_DATABASE_URL, default the test database).
// `npx tsx bench/tools/warm-url-micro.ts [iterations]`.
import { newPage, openMicroContainer } from '../lib/micro-container.js';

const iterations = Number(process.argv[2] ?? 3000);
const { c, close } = await openMicroContainer();
const reqs = newPage();
await c.urls.resolveMany(reqs); // sign + write back
await new Promise((r) => setTimeout(r, 200));
for (let i = 0; i < 300; i++) await c.urls.resolveMany(reqs);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let cached = 0;
for (let i = 0; i < iterations; i++) {
  const out = await c.urls.resolveMany(reqs);
  if (out[0]!.cached) cached++;
}
const wall = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuUs = (cpu.user + cpu.system) / iterations;
console.log(
  `${iterations} warm pages of 100: ${(cpuUs / 100).toFixed(2)} µs CPU per URL, ${(wall / iterations).toFixed(3)} ms wall per page, ${cached}/${iterations} cached`,
);
await close();
process.exit(0);
