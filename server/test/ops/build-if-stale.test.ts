import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm start` builds only when the last build is missing or stale (scripts/build-if-stale.mjs).
 * Each test runs the script on a fixture shaped like the repository (the four workspaces' sources
 * and configs, no real build) with a fake build command that writes the outputs a start needs and
 * counts its runs.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const SCRIPT = path.join(ROOT, 'scripts/build-if-stale.mjs');

const FIXTURE: Record<string, string> = {
  'package.json': JSON.stringify({ workspaces: ['packages/vue', 'server', 'web', 'examples/vue-apollo'] }),
  'package-lock.json': '{}',
  'tsconfig.base.json': '{}',
  'node_modules/.package-lock.json': '{}',
  'node_modules/@electric-sql/pglite/package.json': JSON.stringify({
    name: '@electric-sql/pglite',
    version: '0.5.16',
  }),
  'packages/vue/package.json': '{}',
  'packages/vue/tsconfig.json': '{}',
  'packages/vue/tsconfig.build.json': '{}',
  'packages/vue/vite.config.ts': 'export default {};',
  'packages/vue/src/index.ts': 'export {};',
  'packages/vue/src/gql/graphql.ts': 'export {};',
  'web/package.json': '{}',
  'web/index.html': '<!doctype html>',
  'web/vite.config.ts': 'export default {};',
  'web/src/main.ts': 'export {};',
  'web/src/views/GalleryView.vue': '<template></template>',
  'examples/vue-apollo/package.json': '{}',
  'examples/vue-apollo/index.html': '<!doctype html>',
  'examples/vue-apollo/tsconfig.json': '{}',
  'examples/vue-apollo/src/main.ts': 'export {};',
  'server/package.json': '{}',
  'server/tsconfig.json': '{}',
  'server/src/main.ts': 'export {};',
  'server/src/db/connect.ts': 'export {};',
  'server/src/db/pglite-init.ts': 'export {};',
  // The fake build: the outputs the script requires, one line in build.log per run. FAKE_EDIT
  // names a source it edits while it runs; FAKE_FAIL makes it fail.
  'fake-build.mjs': `
    import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
    import path from 'node:path';
    if (process.env.FAKE_EDIT) appendFileSync(process.env.FAKE_EDIT, '\\n// edited during the build\\n');
    if (process.env.FAKE_FAIL) process.exit(3);
    const { version } = JSON.parse(readFileSync('node_modules/@electric-sql/pglite/package.json', 'utf8'));
    for (const f of [
      'packages/vue/dist/signet-vue.js',
      'packages/vue/dist/index.d.ts',
      'web/dist/index.html',
      'examples/vue-apollo/dist/index.html',
      'server/dist/main.js',
      'server/dist/cli/main.js',
      'server/dist/pglite-cluster-' + version + '/PG_VERSION.gz',
    ]) {
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, '');
    }
    appendFileSync('build.log', 'built\\n');
  `,
};

const fixtures: string[] = [];
afterAll(async () => {
  await Promise.all(fixtures.map((d) => rm(d, { recursive: true, force: true })));
});

/** Sets the mtime of `dir` and of everything under it to an hour ago: sources edited long before. */
function age(dir: string): void {
  const then = new Date(Date.now() - 3600_000);
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    utimesSync(path.join(e.parentPath, e.name), then, then);
  utimesSync(dir, then, then);
}

async function fixture(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-build-if-stale-'));
  fixtures.push(dir);
  for (const [file, text] of Object.entries(FIXTURE)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  age(dir);
  return dir;
}

/** The script on `dir` with the fake build: its exit status, its output, and the builds so far. */
function start(dir: string, env: Record<string, string> = {}, flags: string[] = []) {
  const r = spawnSync(process.execPath, [SCRIPT, ...flags, dir, process.execPath, 'fake-build.mjs'], {
    cwd: dir,
    env: { ...process.env, SIGNET_FORCE_BUILD: '', ...env },
    encoding: 'utf8',
  });
  const log = path.join(dir, 'build.log');
  const builds = existsSync(log) ? readFileSync(log, 'utf8').split('\n').length - 1 : 0;
  return { status: r.status, output: r.stdout + r.stderr, builds };
}

/** A fixture built once by the script, so its stamp is there. */
async function built(): Promise<string> {
  const dir = await fixture();
  const first = start(dir);
  expect(first.status, first.output).toBe(0);
  expect(first.builds).toBe(1);
  return dir;
}

const SKIPPED =
  /^build is up to date \(\d+ paths unchanged since \.build-stamp, checked in \d+ ms\); skipping it/;

describe('npm start builds only when the build is missing or stale (scripts/build-if-stale.mjs)', () => {
  it('builds when no build was recorded, then skips while nothing changed', async () => {
    const dir = await fixture();
    const first = start(dir);
    expect(first).toMatchObject({ status: 0, builds: 1 });
    expect(first.output).toMatch(/^no finished build recorded \(\.build-stamp\); building\n/);
    expect(existsSync(path.join(dir, '.build-stamp'))).toBe(true);
    expect(existsSync(path.join(dir, '.build-stamp.pending'))).toBe(false);

    const second = start(dir);
    expect(second).toMatchObject({ status: 0, builds: 1 });
    expect(second.output).toMatch(SKIPPED);
    // Every file and directory under the four src/ (15 in the fixture) and every config (16: the
    // root's 3, node_modules/.package-lock.json, the workspaces' 12) were looked at.
    expect(Number(/(\d+) paths/.exec(second.output)![1])).toBe(31);
  });

  it('builds after a source file was edited', async () => {
    const dir = await built();
    appendFileSync(path.join(dir, 'web/src/views/GalleryView.vue'), '\n<!-- edited -->\n');
    const r = start(dir);
    expect(r).toMatchObject({ status: 0, builds: 2 });
    expect(r.output).toMatch(
      /^sources changed since the last build: web\/src\/views\/GalleryView\.vue; building/,
    );
    expect(start(dir).output).toMatch(SKIPPED);
  });

  it('builds after a source file was deleted or added: its directory changed', async () => {
    const dir = await built();
    rmSync(path.join(dir, 'server/src/db/pglite-init.ts'));
    const deleted = start(dir);
    expect(deleted).toMatchObject({ status: 0, builds: 2 });
    expect(deleted.output).toMatch(/^sources changed since the last build: server\/src\/db; building/);
    expect(start(dir).output).toMatch(SKIPPED);

    // Moved in from elsewhere with its old mtime: only the directory's says so.
    const moved = path.join(dir, 'packages/vue/src/extra.ts');
    writeFileSync(moved, 'export {};');
    const then = new Date(Date.now() - 3600_000);
    utimesSync(moved, then, then);
    const added = start(dir);
    expect(added).toMatchObject({ status: 0, builds: 3 });
    expect(added.output).toMatch(/^sources changed since the last build: packages\/vue\/src; building/);
  });

  it('a source edited while the build runs makes the next start build again', async () => {
    const dir = await fixture();
    const during = start(dir, { FAKE_EDIT: 'web/src/main.ts' });
    expect(during).toMatchObject({ status: 0, builds: 1 });
    const next = start(dir);
    expect(next).toMatchObject({ status: 0, builds: 2 });
    expect(next.output).toMatch(/^sources changed since the last build: web\/src\/main\.ts; building/);
    expect(start(dir)).toMatchObject({ status: 0, builds: 2 });
  });

  it('builds after a config file was edited, added or removed', async () => {
    const dir = await built();
    appendFileSync(path.join(dir, 'server/tsconfig.json'), '\n');
    expect(start(dir).output).toMatch(
      /^sources changed since the last build: server\/tsconfig\.json; building/,
    );

    rmSync(path.join(dir, 'examples/vue-apollo/tsconfig.json'));
    expect(start(dir).output).toMatch(
      /^examples\/vue-apollo\/tsconfig\.json was removed since the last build; building/,
    );

    writeFileSync(path.join(dir, 'web/tsconfig.json'), '{}');
    expect(start(dir).output).toMatch(/^web\/tsconfig\.json is new since the last build; building/);

    // npm rewrites node_modules/.package-lock.json on every install.
    appendFileSync(path.join(dir, 'node_modules/.package-lock.json'), '\n');
    const installed = start(dir);
    expect(installed).toMatchObject({ status: 0, builds: 5 });
    expect(installed.output).toMatch(/node_modules\/\.package-lock\.json; building/);
    expect(start(dir).output).toMatch(SKIPPED);
  });

  it('builds when an output is missing, including the embedded database template of the installed PGlite', async () => {
    const dir = await built();
    rmSync(path.join(dir, 'web/dist'), { recursive: true });
    expect(start(dir).output).toMatch(/^web\/dist\/index\.html is missing; building/);

    // PGlite upgraded: the template is named for the new version.
    const manifest = path.join(dir, 'node_modules/@electric-sql/pglite/package.json');
    writeFileSync(manifest, JSON.stringify({ name: '@electric-sql/pglite', version: '0.6.0' }));
    const upgraded = start(dir);
    expect(upgraded).toMatchObject({ status: 0, builds: 3 });
    expect(upgraded.output).toMatch(
      /^server\/dist\/pglite-cluster-0\.6\.0\/PG_VERSION\.gz is missing; building/,
    );
    expect(start(dir).output).toMatch(SKIPPED);
  });

  it("a failed build exits with the build's status and leaves no stamp: the next start builds", async () => {
    const dir = await built();
    const failed = start(dir, { SIGNET_FORCE_BUILD: '1', FAKE_FAIL: '1' });
    expect(failed.status).toBe(3);
    expect(failed.output).toMatch(/^SIGNET_FORCE_BUILD=1; building/);
    expect(existsSync(path.join(dir, '.build-stamp'))).toBe(false);
    expect(existsSync(path.join(dir, '.build-stamp.pending'))).toBe(false);
    const next = start(dir);
    expect(next).toMatchObject({ status: 0, builds: 2 });
    expect(next.output).toMatch(/^no finished build recorded/);
  });

  it('npm run build (--always) builds with nothing changed and leaves the stamp the next start honours', async () => {
    const dir = await built();
    const asked = start(dir, {}, ['--always']);
    expect(asked).toMatchObject({ status: 0, builds: 2 });
    expect(asked.output).toMatch(/^asked to build \(npm run build\); building/);
    const next = start(dir);
    expect(next).toMatchObject({ status: 0, builds: 2 });
    expect(next.output).toMatch(SKIPPED);
  });

  it('SIGNET_FORCE_BUILD=1 builds with nothing changed', async () => {
    const dir = await built();
    expect(start(dir, { SIGNET_FORCE_BUILD: '1' })).toMatchObject({ status: 0, builds: 2 });
    expect(start(dir, { SIGNET_FORCE_BUILD: '0' })).toMatchObject({ status: 0, builds: 2 });
  });
});
