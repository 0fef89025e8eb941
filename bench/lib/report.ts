import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Section } from './bench.js';
import { ROOT } from './processes.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
}

export function machineInfo(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export interface RunReport {
  command: string;
  quick: boolean;
  seconds: number;
  machine: Machine;
  versions: { node: string; redis: string; postgres: string };
  sections: Section[];
  /** Some scenarios were skipped (--only) or the run failed: the doc is left alone. */
  partial: boolean;
}

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

const verdict = (pass: boolean | null) => (pass === null ? 'reported' : pass ? '**pass**' : '**FAIL**');
const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The results table plus the run's facts, as Markdown. */
export function renderMarkdown(r: RunReport, autocannon: string): string {
  const lines: string[] = [];
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
  lines.push(
    `Run ${when} UTC with \`${r.command}\`${r.quick ? ' (quick: shorter measurements)' : ''}, ${Math.round(r.seconds)} s.`,
  );
  lines.push('');
  lines.push('| machine | |');
  lines.push('|---|---|');
  lines.push(
    `| CPU | ${r.machine.cpu}, ${r.machine.cores} cores (gateway, load generator, Redis, PostgreSQL and the fixture share them) |`,
  );
  lines.push(`| memory | ${r.machine.memoryGiB} GiB |`);
  lines.push(`| OS | ${r.machine.os} |`);
  lines.push(
    `| versions | Node.js ${r.versions.node}, Redis ${r.versions.redis}, PostgreSQL ${r.versions.postgres}, autocannon ${autocannon} |`,
  );
  lines.push('');
  lines.push('| # | scenario | figure | target | result |');
  lines.push('|---|---|---|---|---|');
  for (const s of r.sections) {
    for (const row of s.rows) {
      lines.push(
        `| ${row.id} | ${cell(row.what)} | ${cell(row.figure)} | ${cell(row.target)} | ${verdict(row.pass)} |`,
      );
    }
  }
  const notes = r.sections.filter((s) => s.notes && s.notes.length > 0);
  if (notes.length > 0) {
    lines.push('');
    lines.push('Measured in this run:');
    lines.push('');
    for (const s of notes) for (const n of s.notes!) lines.push(`- **${s.id}** ${n}`);
  }
  return lines.join('\n');
}

export async function writeResults(r: RunReport): Promise<string> {
  const autocannon = (
    JSON.parse(await readFile(path.join(ROOT, 'node_modules/autocannon/package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const json = { ...r, versions: { ...r.versions, autocannon }, finishedAt: new Date().toISOString() };
  await writeFile(path.join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  const md = renderMarkdown(r, autocannon);
  if (!r.partial) {
    const docPath = path.join(ROOT, 'docs/benchmarks.md');
    const doc = await readFile(docPath, 'utf8').catch(() => `# Benchmarks\n\n${START}\n${END}\n`);
    const a = doc.indexOf(START);
    const b = doc.indexOf(END);
    const next =
      a >= 0 && b > a
        ? `${doc.slice(0, a + START.length)}\n${md}\n${doc.slice(b)}`
        : `${doc.trimEnd()}\n\n${START}\n${md}\n${END}\n`;
    await writeFile(docPath, next);
  }
  return md;
}
