// `npx tsx bench/tools/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> [per] [top]`: what
// the second V8 heap snapshot holds more than the first, by node type and constructor, in bytes
// (divided by `per`: e.g. the number of subscriptions opened between the two). Take the snapshots
// of a gateway started with `BENCH_GATEWAY_NODE_FLAGS="--max-semi-space-size=16
// --heap-growing-percent=100 --heapsnapshot-signal=SIGUSR2" npx tsx bench/tools/serve.ts`
// (`kill -USR2 <gatewayPid>` writes one into the working directory). Snapshots of a few hundred MB
// need `NODE_OPTIONS=--max-old-space-size=8000`.
import { readFile } from 'node:fs/promises';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

async function bySize(file: string): Promise<Map<string, { count: number; bytes: number }>> {
  const s = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!]!;
    // A string's name is its text, and code's its source: grouped, not listed one by one.
    const name =
      STRING_TYPES.has(type) || type === 'code' ? '' : s.strings[s.nodes[i + nameAt]!]!.slice(0, 60);
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count += 1;
    e.bytes += s.nodes[i + sizeAt]!;
    out.set(key, e);
  }
  return out;
}

const [a, b, perArg, topArg] = process.argv.slice(2);
if (!a || !b) throw new Error('usage: heap-diff <before.heapsnapshot> <after.heapsnapshot> [per] [top]');
const per = Number(perArg ?? 1);
const top = Number(topArg ?? 30);
const [before, after] = [await bySize(a), await bySize(b)];
const rows = [...after].map(([key, e]) => {
  const was = before.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: (e.count - was.count) / per, bytes: (e.bytes - was.bytes) / per };
});
rows.sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((n, r) => n + r.bytes, 0);
process.stdout.write(
  `${total.toFixed(0)} bytes more${per === 1 ? '' : `, each figure divided by ${per}`}\n  bytes   count  type:constructor\n`,
);
for (const r of rows.slice(0, top))
  process.stdout.write(`${r.bytes.toFixed(0).padStart(7)} ${r.count.toFixed(2).padStart(7)}  ${r.key}\n`);
