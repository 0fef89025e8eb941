import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * PGlite's start parameters: its defaults with `shared_buffers` at 16 MB instead of PostgreSQL's
 * 128 MB. The embedded database is the demo's and a small deployment's, with thousands of rows,
 * not millions: the buffers were most of the process's resident memory once warm
 * (docs/benchmarks.md, scenario 10c).
 */
export function pgliteStartParams(defaults: readonly string[]): string[] {
  return [...defaults, '-c', 'shared_buffers=16MB'];
}

/**
 * The first start of an embedded database: PGlite runs `initdb` with a second PGlite instance
 * and the initdb WebAssembly module beside the one that will serve, whose memory a WebAssembly
 * instance never gives back. Run in a short-lived child process, the cluster is written to `dir`
 * and all of that memory goes back to the system when the child exits; the server then opens an
 * existing cluster (one instance). Returns the child's peak RSS in MiB (for the log and
 * docs/benchmarks.md, scenario 10c), or undefined when `dir` already holds a cluster.
 */
export async function initPgliteCluster(dir: string): Promise<number | undefined> {
  if (existsSync(path.join(dir, 'PG_VERSION'))) return undefined;
  // The CommonJS entry, so the child needs no module loader of ours (the server may run as
  // TypeScript under a test runner).
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const script = `
    const { PGlite } = require(process.argv[1]);
    const startParams = JSON.parse(process.argv[3]);
    (async () => {
      const pg = new PGlite(process.argv[2], { startParams: [...PGlite.defaultStartParams, ...startParams] });
      await pg.waitReady;
      await pg.close();
      const hwm = /VmHWM:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'));
      process.stdout.write('\\npglite-init-peak-kib ' + (hwm ? hwm[1] : '') + '\\n');
    })().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
  `;
  const extra = pgliteStartParams([]);
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      // Baseline-compiled WebAssembly only: the optimising tier's code for three modules run
      // once costs ~100 MB of the child's peak and, measured, more time than it saves.
      ['--liftoff-only', '--no-wasm-tier-up', '-e', script, entry, dir, JSON.stringify(extra)],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err)
          reject(new Error(`could not initialise the embedded database in ${dir}: ${stderr || err.message}`));
        else resolve(stdout);
      },
    );
  });
  const peak = /pglite-init-peak-kib (\d+)/.exec(out);
  return peak ? Number(peak[1]) / 1024 : undefined;
}
