// Micro-measure: bytes allocated per page of UrlService.resolveMany, 100 ids never seen (cold:
// sign, write back, publish, access bookkeeping) or 100 cached ones (warm), by the function that
// allocated them. V8's sampling heap profiler, told to keep the objects the collector has freed
// too, so the figure is what a page allocates, not what it leaves behind. Allocation is what sets
// how often the young generation is collected and, with requests in flight, how much is promoted
// (docs/benchmarks.md, finding 45). In process against the local Redis (and PostgreSQL:
// BENCH_DATABASE_URL, default the test database).
// `npx tsx bench/tools/alloc-micro.ts [pages] [cold|warm] [top]`. The figures are samples (one
// per 512 bytes on average): a function below ~1 KiB a page is noise.
import { Session } from 'node:inspector/promises';
import { openMicroContainer, pageSequence } from '../lib/micro-container.js';

const pages = Number(process.argv[2] ?? 300);
const mode = process.argv[3] ?? 'cold';
const top = Number(process.argv[4] ?? 25);
if (mode !== 'cold' && mode !== 'warm') throw new Error('usage: alloc-micro.ts [pages] [cold|warm] [top]');

interface SampleNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: SampleNode[];
}

const { c, close } = await openMicroContainer();
const { warm, at: pageAt } = pageSequence(mode, pages + 200);
// As the server does it: the write-back goes out after the page's answer (signer.ts).
const run = async (i: number) => {
  await c.urls.resolveMany(pageAt(i));
  await new Promise((r) => setImmediate(r));
};
await c.urls.resolveMany(warm);
for (let i = 0; i < 200; i++) await run(i); // compiled, pools and maps grown
await new Promise((r) => setTimeout(r, 1500)); // the warm-up's access flush out of the way

const session = new Session();
session.connect();
// The two include flags are not in @types/node's protocol types; V8 takes them since 11.x.
const sampling: object = {
  samplingInterval: 512,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
};
await session.post('HeapProfiler.startSampling', sampling);
for (let i = 200; i < pages + 200; i++) await run(i);
// The last write-backs and one access flush land inside the measurement.
await new Promise((r) => setTimeout(r, 1500));
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
  profile: { head: SampleNode };
};
session.disconnect();

const byFunction = new Map<string, number>();
let total = 0;
const walk = (n: SampleNode) => {
  const where = n.callFrame.url.replace(/^.*\/(node_modules|server\/src)\//, '').replace(/^file:\/\//, '');
  const name = `${n.callFrame.functionName || '(anonymous)'} ${where || '(native)'}`;
  total += n.selfSize;
  byFunction.set(name, (byFunction.get(name) ?? 0) + n.selfSize);
  for (const child of n.children) walk(child);
};
walk(profile.head);
const kib = (bytes: number) => (bytes / pages / 1024).toFixed(1).padStart(7);
console.log(`${mode}: ${kib(total).trim()} KiB allocated per page of 100 (${pages} pages)`);
for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${kib(bytes)} KiB  ${name}`);
await close();
process.exit(0);
