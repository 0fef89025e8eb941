import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Code comments and docs point at the project's design by section: `docs/<file>.md, "Heading"`.
 * A renamed or merged section leaves such a pointer dangling, and nobody notices until a reader
 * looks for it (eight were found by hand on 2026-12-05). This reads every pointer in the sources
 * and the docs and checks that its doc has a heading of exactly that text.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const SCANNED = ['server/src', 'server/test', 'bench', 'web/src', 'web/e2e', 'packages/vue/src', 'docs'];
const SKIP = new Set(['node_modules', 'dist', 'gql']);

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel));
    else if (/\.(ts|vue|md)$/.test(e.name)) out.push(rel);
  }
  return out;
}

/** The headings of a doc, without their `#`s. */
function headings(doc: string): Set<string> {
  const text = readFileSync(path.join(ROOT, 'docs', doc), 'utf8');
  const found = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^#{1,6} (.+)$/.exec(line);
    if (m) found.add(m[1]!.trim());
  }
  return found;
}

/**
 * Does a heading go by this name? Its whole text, or the text before what a heading adds in
 * parentheses or after a colon (`Redis behind Sentinel (\`REDIS_SENTINELS\`, …)`).
 */
function names(known: Set<string>, section: string): boolean {
  if (known.has(section)) return true;
  for (const h of known) if (h.startsWith(`${section} (`) || h.startsWith(`${section}:`)) return true;
  return false;
}

describe('section references', () => {
  it('every `docs/<file>.md, "Section"` in the code and the docs names a heading of that doc', () => {
    const docs = new Map<string, Set<string>>();
    const dangling: string[] = [];
    let checked = 0;
    // A pointer may wrap onto the next comment line: `docs/x.md,` then `// "Heading"`.
    const pointer = /docs\/([a-z-]+\.md),\s*(?:(?:\/\/|\*)\s*)?"([^"\n]+)"/g;
    for (const file of SCANNED.flatMap(files)) {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      for (const m of text.matchAll(pointer)) {
        const [, doc, section] = m as unknown as [string, string, string];
        let known = docs.get(doc);
        if (!known) {
          known = headings(doc);
          docs.set(doc, known);
        }
        checked++;
        if (!names(known, section)) dangling.push(`${file}: docs/${doc}, "${section}"`);
      }
    }
    expect(dangling).toEqual([]);
    expect(checked).toBeGreaterThan(50); // the scan found the pointers at all
  });
});
