import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const run = promisify(execFile);

// `npm run persisted`: the allow-list a client of its own can join (`--from <dir>`), so a
// gateway with PERSISTED_OPERATIONS_ONLY=true runs that client's operations too.
describe('npm run persisted', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-manifest-'));
    await writeFile(
      path.join(dir, 'mine.graphql'),
      'query MyOwnPage { images(first: 3) { edges { node { id } } } }\n',
    );
    await writeFile(
      path.join(dir, 'page.ts'),
      'export const Q = gql`query MyTaggedViewer { viewer { id } }`;\n',
    );
    // @signet/vue's README: the package's fragment put in by interpolation.
    await writeFile(
      path.join(dir, 'photos.ts'),
      [
        "import { signetImageFragment } from '@signet/vue';",
        'export const PHOTOS = gql`',
        '  query Photos { images(first: 12) { edges { node { ...SignetImage } } } }',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the client's source text, written out
        '  ${signetImageFragment}',
        '`;',
        '',
      ].join('\n'),
    );
    // An installed package's documents are not the client's (and would define its fragment twice).
    await mkdir(path.join(dir, 'node_modules/@signet/vue/src/graphql'), { recursive: true });
    await writeFile(
      path.join(dir, 'node_modules/@signet/vue/src/graphql/other.graphql'),
      'fragment SignetImage on Image { id }\nquery FromAPackage { viewer { id } }\n',
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const manifest = async (...args: string[]) => {
    const file = path.join(dir, `out-${args.length}.json`);
    await run(
      process.execPath,
      ['--import', 'tsx', 'server/src/schema/persisted-manifest.ts', file, ...args],
      {
        cwd: ROOT,
      },
    );
    return Object.values(JSON.parse(await readFile(file, 'utf8')) as Record<string, string>);
  };

  it('holds the web app and the package by default, and the documents of every --from directory', async () => {
    const plain = await manifest();
    expect(plain.some((d) => d.includes('query GalleryPage'))).toBe(true);
    expect(plain.some((d) => d.includes('MyOwnPage'))).toBe(false);
    const joined = await manifest('--from', dir);
    expect(joined.length).toBe(plain.length + 3);
    expect(joined.some((d) => d.includes('query MyOwnPage'))).toBe(true);
    expect(joined.some((d) => d.includes('query MyTaggedViewer'))).toBe(true);
    // The interpolated fragment is found by name among the package's documents.
    const photos = joined.find((d) => d.includes('query Photos'));
    expect(photos).toContain('fragment SignetImage on Image');
    expect(joined.some((d) => d.includes('FromAPackage'))).toBe(false);
  });

  it("--keep: an earlier release's operations this schema still runs stay, under their own hashes", async () => {
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const stillValid =
      'query OldGalleryPage {\n  images(first: 5) {\n    edges {\n      node {\n        id\n      }\n    }\n  }\n}';
    const gone = 'query UsesARemovedField {\n  viewer {\n    removedLongAgo\n  }\n}';
    const earlier = path.join(dir, 'earlier.json');
    await writeFile(
      earlier,
      JSON.stringify({ [sha(stillValid)]: stillValid, [sha(gone)]: gone, ['0'.repeat(64)]: stillValid }),
    );
    const file = path.join(dir, 'out-keep.json');
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'server/src/schema/persisted-manifest.ts', file, '--keep', earlier],
      { cwd: ROOT },
    );
    const list = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(list[sha(stillValid)]).toBe(stillValid);
    expect(Object.values(list).some((d) => d.includes('removedLongAgo'))).toBe(false);
    // A hash that is not its text's own is no operation a client could send.
    expect(list['0'.repeat(64)]).toBeUndefined();
    expect(Object.values(list).some((d) => d.includes('query GalleryPage'))).toBe(true);
    expect(stdout).toMatch(/left out of .*earlier\.json \(no longer valid\): UsesARemovedField/);
    expect(stdout).toMatch(/\(1 kept from earlier lists\)/);
  });
});
