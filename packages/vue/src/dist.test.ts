// @vitest-environment node
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The built package as a host meets it (`npm run build:vue` first; `npm test` builds it): loaded by
// Node itself, as a host's Vitest suite or an unbundled SSR server loads it, and importing only
// packages its manifest declares.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const entry = path.join(dist, 'signet-vue.js');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for a relative one. */
const packageOf = (specifier: string) => {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
};

/** Every module specifier a file of dist names (`from '…'`, `import('…')`). */
const specifiersOf = (text: string) =>
  [...text.matchAll(/\bfrom\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g)].map(
    (m) => m[1] ?? m[2]!,
  );

const distFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? distFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );

describe.runIf(existsSync(entry))('the built package', () => {
  it('loads in plain Node (no bundler): no directory imports, every export there', async () => {
    const script = `const m = await import(${JSON.stringify(entry)}); console.log(Object.keys(m).sort().join(','));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
    });
    expect(stdout.trim().split(',')).toEqual(
      expect.arrayContaining(['SmartImage', 'createSignet', 'SseLink', 'rememberUrl', 'signetTypePolicies']),
    );
  }, 30_000);

  it('imports, in its JS and its declarations, only packages it declares', () => {
    const declared = new Set([
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    const undeclared = distFiles(dist)
      .filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))
      .flatMap((f) =>
        specifiersOf(readFileSync(f, 'utf8'))
          .map(packageOf)
          .filter((p): p is string => p !== undefined && !declared.has(p))
          .map((p) => `${path.relative(dist, f)}: ${p}`),
      );
    expect(undeclared).toEqual([]);
  });
});

it('the built package is there to test (npm run build:vue)', () => {
  expect(existsSync(entry), `${entry} is missing: run npm run build:vue`).toBe(true);
});
