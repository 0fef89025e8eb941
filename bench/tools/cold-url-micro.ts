// Micro-measure: CPU per page of UrlService.resolveMany for 100 ids never seen (cold: sign, write
// back, publish, access bookkeeping) or 100 cached ones (warm), in process against the local
// Redis (and PostgreSQL: BENCH_DATABASE_URL, default the test database), one page at a time.
// `npx tsx bench/tools/cold-url-micro.ts [pages] [cold|warm]`. OFF=write,publish,access,telemetry,signed
// replaces those parts with no-ops, to see what each costs (an experiment: it reaches into the
// service's private dependencies). Its keys are removed at the end.
import { openMicroContainer, pageSequence } from '../lib/micro-container.js';

const pages = Number(process.argv[2] ?? 1000);
const mode = process.argv[3] ?? 'cold';
if (mode !== 'cold' && mode !== 'warm') throw new Error('usage: cold-url-micro.ts [pages] [cold|warm]');
const { c, close } = await openMicroContainer();

// The parts OFF names, replaced with no-ops (private fields: this is an experiment, not an API).
const off = new Set((process.env.OFF ?? '').split(',').filter(Boolean));
type Loose = Record<string, Record<string, unknown> & { d: Record<string, unknown> }>;
const d = (c.urls as unknown as { d: Loose }).d;
const signerDeps = d.signer!.d as Record<string, Record<string, unknown>>;
if (off.has('write')) signerDeps.cache = { write: () => Promise.resolve(null) };
if (off.has('publish')) signerDeps.events = { publish: () => Promise.resolve() };
if (off.has('access'))
  (d.telemetry as unknown as { access: Record<string, unknown> }).access.record = () => {};
if (off.has('telemetry')) Object.assign(d.telemetry!, { resolved: () => {}, variants: () => {} });
if (off.has('signed')) Object.assign(signerDeps.telemetry!, { signed: () => {} });

const { warm, at: next } = pageSequence(mode, pages + 199);
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
await c.urls.resolveMany(warm);
await settle(200);
for (let i = 0; i < 200; i++) await c.urls.resolveMany(next(i));
await settle(1500);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 200; i < pages + 199; i++) {
  await c.urls.resolveMany(next(i));
  // The write-back goes out after the page's answer, as in the server (signer.ts).
  await new Promise((r) => setImmediate(r));
}
const wall = performance.now() - t0;
// The last write-backs and an access flush land inside the measurement.
await settle(1500);
const cpu = process.cpuUsage(cpu0);
const n = pages - 1;
console.log(
  `${mode}${off.size ? ` (off: ${[...off].join(',')})` : ''}: ${((cpu.user + cpu.system) / n / 1000).toFixed(3)} ms CPU per page of 100 (with its write-back and access flush), ${(wall / n).toFixed(3)} ms wall`,
);
await close();
process.exit(0);
