import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, realpath, rename, rm, rmdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';

/**
 * PGlite's start parameters: its defaults with `shared_buffers` at 16 MB instead of PostgreSQL's
 * 128 MB. The embedded database is the demo's and a small deployment's, with thousands of rows,
 * not millions: the buffers were most of the process's resident memory once warm
 * (docs/benchmarks.md, scenario 10c).
 */
export function pgliteStartParams(defaults: readonly string[]): string[] {
  return [...defaults, '-c', 'shared_buffers=16MB'];
}

const requireHere = createRequire(import.meta.url);

/**
 * The build's copy of a new, cleanly shut-down cluster (docs/architecture.md, "Embedded
 * database"): `server/dist/pglite-cluster-<PGlite version>`, one gzip file per cluster file. The
 * version is in the name because a cluster is only good for the PostgreSQL that wrote it; after
 * an upgrade without a build the name does not match and a first start runs initdb. The same
 * path from the sources (tests) and from the build (`src/db` and `dist/db` are both two levels
 * below the package).
 */
export function defaultPgliteTemplate(): string {
  // The package exports no package.json: it is the one above the entry's `dist/`.
  const manifest = path.resolve(requireHere.resolve('@electric-sql/pglite'), '../../package.json');
  const { name, version } = requireHere(manifest) as { name: string; version: string };
  if (name !== '@electric-sql/pglite') throw new Error(`not PGlite's package.json: ${manifest}`);
  return path.resolve(fileURLToPath(import.meta.url), '../../../dist', `pglite-cluster-${version}`);
}

export interface ClusterInit {
  /** `template`: copied from the build's template; `initdb`: written by PGlite's initdb. */
  source: 'template' | 'initdb';
  /** The initdb child's peak RSS in MiB (docs/benchmarks.md, scenario 10c). */
  childPeakMiB?: number;
}

/**
 * The first start of an embedded database: `dir` gets a cluster, copied from the build's template
 * (`template`, default `defaultPgliteTemplate()`; null: none) when there is one, else written by
 * initdb. Returns undefined when `dir` already holds a cluster.
 *
 * PGlite's initdb drives a second PGlite instance from the initdb WebAssembly module beside the
 * one that serves, keeps a copy of that instance's whole memory to reset it between the backends
 * initdb starts, and WebAssembly memory is never given back: 530-660 MiB of peak RSS, more than a
 * small container has. So initdb runs only where it must (at the build, or without one) and then
 * in a short-lived child process; a first start from a build copies ~40 MB of files instead.
 * Either way the cluster is made in a sibling directory and renamed into place, so a start that is
 * killed half-way leaves no half-made cluster to be mistaken for a whole one.
 */
export async function initPgliteCluster(
  dirAsGiven: string,
  template?: string | null,
): Promise<ClusterInit | undefined> {
  if (existsSync(path.join(dirAsGiven, 'PG_VERSION'))) return undefined;
  // A symlinked directory gets the cluster where it points (the link stays).
  const dir = await realpath(dirAsGiven).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return dirAsGiven;
    throw err;
  });
  await refuseForeignFiles(dir);
  // A fixed name: what a start that was killed half-way left is removed by the next one.
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  try {
    const from = template === undefined ? defaultPgliteTemplate() : template;
    const result = await makeCluster(partial, from);
    await moveIntoPlace(partial, dir);
    return result;
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}

/** `dir` may exist already, empty (openDatabase makes it); one with files is not ours to replace. */
async function refuseForeignFiles(dir: string): Promise<void> {
  const inDir = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (inDir.length > 0)
    throw new Error(
      `${dir} holds files but no database cluster (no PG_VERSION): move it away and start again`,
    );
}

/** Whether `template` holds a whole template (its marker is written last: by the rename). */
export function isPgliteTemplate(template: string): boolean {
  return existsSync(path.join(template, 'PG_VERSION.gz'));
}

/** A whole cluster in `partial`: unzipped from the template, or written by initdb without one. */
async function makeCluster(partial: string, template: string | null): Promise<ClusterInit> {
  if (template !== null && isPgliteTemplate(template)) {
    await copyTree(template, partial, 'gunzip').catch((err: Error) => {
      throw new Error(
        `could not copy the build's database template ${template} (${err.message}): build again, or delete it to start with initdb`,
      );
    });
    return { source: 'template' };
  }
  const childPeakMiB = await initdbInChild(partial);
  // PGlite makes it 0755; what it writes later inside is then out of other users' reach.
  await chmod(partial, 0o700);
  return { source: 'initdb', ...(childPeakMiB === undefined ? {} : { childPeakMiB }) };
}

/**
 * `partial` becomes `dir`. rename(2) would replace an empty `dir` on Linux, not on every system:
 * the empty directory is removed first. A `dir` that is a mount point cannot be replaced: DATA_DIR
 * is what a deployment mounts (docs/operations.md, "Embedded mode").
 */
async function moveIntoPlace(partial: string, dir: string): Promise<void> {
  await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EBUSY')
      throw new Error(`${dir} is a mount point: mount DATA_DIR instead, which holds it`);
    if (err.code !== 'ENOENT') throw err;
  });
  await rename(partial, dir);
}

/**
 * Makes the build's template (`npm run build`, `make-pglite-template.ts`): a new cluster written
 * by initdb and closed by PGlite, checked to be shut down cleanly, each file gzipped (the WAL
 * segment is mostly zeros: ~40 MB of cluster, ~4 MB of template). Returns false when `out` is
 * there already.
 */
export async function buildPgliteTemplate(out: string = defaultPgliteTemplate()): Promise<boolean> {
  if (isPgliteTemplate(out)) return false;
  const work = `${out}.work`;
  const partial = `${out}.partial`;
  // What a build that was killed left (initdb refuses a directory that is not empty).
  await rm(work, { recursive: true, force: true });
  await rm(partial, { recursive: true, force: true });
  try {
    await initdbInChild(work);
    const state = await clusterState(work);
    if (state !== DB_SHUTDOWNED)
      throw new Error(
        `PGlite left the new cluster in state ${state}, not shut down cleanly: no template made`,
      );
    await copyTree(work, partial, 'gzip');
    await rm(out, { recursive: true, force: true });
    await rename(partial, out);
    return true;
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(partial, { recursive: true, force: true });
  }
}

/** Removes the templates of other PGlite versions beside `out` (left by builds before an upgrade). */
export async function removeOtherTemplates(out: string = defaultPgliteTemplate()): Promise<string[]> {
  const dist = path.dirname(out);
  const others = (await readdir(dist)).filter(
    (n) => n.startsWith('pglite-cluster-') && n !== path.basename(out),
  );
  for (const name of others) await rm(path.join(dist, name), { recursive: true, force: true });
  return others;
}

/** PostgreSQL's `DB_SHUTDOWNED`: the `state` of a cluster whose server stopped cleanly. */
const DB_SHUTDOWNED = 1;

/**
 * The `state` field of `global/pg_control` (PostgreSQL's ControlFileData: the system identifier,
 * 8 bytes, two 4-byte version numbers, then the state). Little-endian whatever the host: PGlite's
 * PostgreSQL is WebAssembly, whose memory is little-endian.
 */
export async function clusterState(dir: string): Promise<number> {
  return (await readFile(path.join(dir, 'global', 'pg_control'))).readInt32LE(16);
}

/**
 * Copies a directory tree file by file, gzipping or gunzipping each (`.gz` added or removed).
 * Modes are not copied (PGlite writes 0755 and 0666): a cluster is the server's alone (0700 and
 * 0600); the template, a blank cluster made by the build, is readable by the user the server runs
 * as (the Docker image builds as root and runs as `node`).
 */
async function copyTree(from: string, to: string, how: 'gzip' | 'gunzip'): Promise<void> {
  const [dirMode, fileMode] = how === 'gzip' ? [0o755, 0o644] : [0o700, 0o600];
  await mkdir(to, { mode: dirMode });
  await chmod(to, dirMode); // whatever the umask
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    if (entry.isDirectory()) {
      await copyTree(src, path.join(to, entry.name), how);
    } else if (entry.isFile()) {
      const dst = path.join(to, how === 'gzip' ? `${entry.name}.gz` : entry.name.replace(/\.gz$/, ''));
      const codec = how === 'gzip' ? createGzip() : createGunzip();
      await pipeline(createReadStream(src), codec, createWriteStream(dst, { mode: fileMode }));
      await chmod(dst, fileMode);
    } else {
      throw new Error(`unexpected entry in a database cluster: ${src}`);
    }
  }
}

/** PGlite's initdb in a child process (see initPgliteCluster); returns the child's peak RSS in MiB. */
async function initdbInChild(dir: string): Promise<number | undefined> {
  // The CommonJS entry, so the child needs no module loader of ours (the server may run as
  // TypeScript under a test runner).
  const entry = requireHere.resolve('@electric-sql/pglite');
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
        if (!err) return resolve(stdout);
        // Killed is what a memory limit below initdb's peak does to it (a small container).
        const memoryHint =
          ': out of memory? initdb needs 530-660 MiB; a start from a build copies the build\'s cluster template instead (docs/architecture.md, "Embedded database")';
        const how = err.signal
          ? `was killed (${err.signal}${err.signal === 'SIGKILL' ? memoryHint : ''})`
          : `failed: ${stderr.trim() || err.message}`;
        reject(
          new Error(
            `could not initialise the embedded database in ${dir}: PGlite's initdb child process ${how}`,
          ),
        );
      },
    );
  });
  const peak = /pglite-init-peak-kib (\d+)/.exec(out);
  return peak ? Number(peak[1]) / 1024 : undefined;
}
