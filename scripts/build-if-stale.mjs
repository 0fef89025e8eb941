// `npm start`'s build step: runs the workspaces' builds (`npm run build:workspaces`) only when the
// last build is missing or stale, so a restart with nothing changed skips the 15 s build.
// `npm run build` runs this script with --always: it builds whatever the check says, and leaves
// the stamp a later `npm start` compares with.
//
//   node scripts/build-if-stale.mjs [--always] [root] [build command...]
//
// root defaults to the repository (this file's parent directory); the build command defaults to
// `npm run build:workspaces`, run in root (the tests give a fixture directory and a fake build).
// Set SIGNET_FORCE_BUILD=1 to build whatever the check says.
//
// The build is stale when:
// - `.build-stamp` is missing: no build went through here yet, or the last one failed or was
//   stopped (the stamp is removed when a build starts and written back only when it succeeds);
// - an output a start needs is missing (each workspace's `dist`, the server's entry points, the
//   embedded database's template for the installed PGlite);
// - an input's mtime is not older than the stamp's. The stamp is written when the build starts,
//   so a file edited during a build makes the next start build again. Inputs are every file and
//   directory under each workspace's `src` and `public` (a directory's mtime changes when an
//   entry in it is added, removed or renamed), each workspace's and the root's package.json,
//   package-lock.json, tsconfig*.json, vite.config.* and index.html, and
//   node_modules/.package-lock.json (npm rewrites it on every install);
// - such a config file was added or removed since the build (the stamp lists them).
// Entries named node_modules or dist, and names starting with a dot, are not walked.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STAMP = '.build-stamp';
/** Top-level files of the root and of each workspace that the builds read. */
const CONFIG =
  /^(package\.json|package-lock\.json|tsconfig(\..+)?\.json|vite\.config\.[cm]?[jt]s|index\.html)$/;
/** What the builds write that a start needs (the build scripts of the workspaces' package.json). */
const OUTPUTS = [
  'packages/vue/dist/signet-vue.js',
  'packages/vue/dist/index.d.ts',
  'web/dist/index.html',
  'examples/vue-apollo/dist/index.html',
  'server/dist/main.js',
  'server/dist/cli/main.js',
];

const args = process.argv.slice(2);
const always = args[0] === '--always';
if (always) args.shift();
const root = path.resolve(args[0] ?? fileURLToPath(new URL('..', import.meta.url)));
const command = args.length > 1 ? args.slice(1) : ['npm', 'run', 'build:workspaces'];
const at = (rel) => path.join(root, rel);

/** The workspaces' directories, from the root package.json. */
function workspaces() {
  return JSON.parse(readFileSync(at('package.json'), 'utf8')).workspaces ?? [];
}

/** The config files there are now, sorted, relative to root. */
function configs() {
  const found = [];
  for (const dir of ['.', ...workspaces()]) {
    for (const name of readdirSync(at(dir))) if (CONFIG.test(name)) found.push(path.join(dir, name));
  }
  if (existsSync(at('node_modules/.package-lock.json'))) found.push('node_modules/.package-lock.json');
  return found.sort();
}

/**
 * The template server/dist/db/make-pglite-template.js writes for the installed PGlite, as
 * server/src/db/pglite-init.ts names it, or why it cannot be named.
 */
function pgliteTemplate() {
  for (const dir of ['server/node_modules', 'node_modules']) {
    const manifest = at(`${dir}/@electric-sql/pglite/package.json`);
    if (existsSync(manifest)) {
      const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
      return { path: `server/dist/pglite-cluster-${version}/PG_VERSION.gz` };
    }
  }
  return { missing: 'node_modules/@electric-sql/pglite (run npm install)' };
}

/** How many paths newer() looked at (the up-to-date line says it). */
let checked = 0;

/** The first input whose mtime is not older than `since` (ns), walking `rel` if it is a directory. */
function newer(rel, since) {
  let st;
  try {
    st = statSync(at(rel), { bigint: true });
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
  checked++;
  if (st.mtimeNs >= since) return rel;
  if (!st.isDirectory()) return undefined;
  for (const name of readdirSync(at(rel))) {
    if (name.startsWith('.') || name === 'node_modules' || name === 'dist') continue;
    const found = newer(path.join(rel, name), since);
    if (found) return found;
  }
  return undefined;
}

/** Why a build is needed, or undefined when the last one is up to date. */
function staleness() {
  if (always) return 'asked to build (npm run build)';
  const force = process.env.SIGNET_FORCE_BUILD;
  if (force && force !== '0' && force !== 'false') return `SIGNET_FORCE_BUILD=${force}`;
  let stamp;
  try {
    stamp = {
      ...JSON.parse(readFileSync(at(STAMP), 'utf8')),
      mtimeNs: statSync(at(STAMP), { bigint: true }).mtimeNs,
    };
  } catch {
    // missing, or not a stamp this script wrote
  }
  if (!Array.isArray(stamp?.configs)) return `no finished build recorded (${STAMP})`;
  const template = pgliteTemplate();
  if (template.missing) return `cannot name the embedded database template: no ${template.missing}`;
  for (const rel of [...OUTPUTS, template.path]) if (!existsSync(at(rel))) return `${rel} is missing`;
  const now = configs();
  const added = now.find((f) => !stamp.configs.includes(f));
  if (added) return `${added} is new since the last build`;
  const removed = stamp.configs.find((f) => !now.includes(f));
  if (removed) return `${removed} was removed since the last build`;
  for (const ws of workspaces()) {
    for (const rel of [path.join(ws, 'src'), path.join(ws, 'public')]) {
      const found = newer(rel, stamp.mtimeNs);
      if (found) return `sources changed since the last build: ${found}`;
    }
  }
  for (const rel of now) {
    const found = newer(rel, stamp.mtimeNs);
    if (found) return `sources changed since the last build: ${found}`;
  }
  return undefined;
}

const started = process.hrtime.bigint();
const reason = staleness();
if (reason === undefined) {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(
    `build is up to date (${checked} paths unchanged since ${STAMP}, checked in ${ms.toFixed(0)} ms); skipping it (SIGNET_FORCE_BUILD=1 forces it)`,
  );
  process.exit(0);
}

console.log(`${reason}; building`);
// The stamp's mtime is the build's start, on the clock of the filesystem that holds the sources.
// It is written aside and renamed into place (keeping that mtime) once the build succeeded.
rmSync(at(STAMP), { force: true });
const pending = at(`${STAMP}.pending`);
writeFileSync(pending, `${JSON.stringify({ started: new Date().toISOString(), configs: configs() })}\n`);
const child = spawn(command[0], command.slice(1), { cwd: root, stdio: 'inherit' });
child.on('error', (err) => {
  rmSync(pending, { force: true });
  console.error(`cannot run ${command.join(' ')}: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (code === 0) {
    renameSync(pending, at(STAMP));
    process.exit(0);
  }
  rmSync(pending, { force: true });
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
});
