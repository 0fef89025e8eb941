import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  buildSchema,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  parse,
  print,
  validate,
} from 'graphql';

import { canonicalDocument, ordered, sha256Hex, spreads } from '../lib/canonical-document.js';

export { canonicalDocument, sha256Hex };

/** sha256 (hex) of a document's text → the text: the persisted operations allow-list. */
export type OperationManifest = Record<string, string>;

/**
 * One standalone document per named operation of the sources (the operation plus every fragment
 * it uses, transitively), keyed by the sha256 of its printed text.
 */
export function buildManifest(sources: readonly string[]): OperationManifest {
  const defs = sources.flatMap((s) => parse(s).definitions);
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of defs) {
    if (d.kind !== Kind.FRAGMENT_DEFINITION) continue;
    const seen = fragments.get(d.name.value);
    // The same fragment read twice (a client that copied the package's) is one fragment.
    if (seen && print(seen) !== print(d)) throw new Error(`fragment ${d.name.value} is defined twice`);
    fragments.set(d.name.value, d);
  }
  const ops = defs.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const manifest: OperationManifest = {};
  for (const op of ops.sort((a, b) => (a.name?.value ?? '').localeCompare(b.name?.value ?? ''))) {
    if (!op.name) throw new Error(`an anonymous operation cannot be persisted: ${print(op).slice(0, 60)}`);
    const used = new Set<string>();
    const pending = spreads(op);
    while (pending.length) {
      const name = pending.pop()!;
      if (used.has(name)) continue;
      const frag = fragments.get(name);
      if (!frag) throw new Error(`operation ${op.name.value} uses the unknown fragment ${name}`);
      used.add(name);
      pending.push(...spreads(frag));
    }
    const text = print({
      kind: Kind.DOCUMENT,
      definitions: ordered([op, ...[...used].map((n) => fragments.get(n)!)]),
    });
    manifest[sha256Hex(text)] = text;
  }
  return manifest;
}

/**
 * The operations of an earlier allow-list (the release being replaced) that this schema still
 * runs, under their own hashes: during a rolling upgrade, browser tabs opened on the earlier web
 * app send them to nodes of this release (docs/operations.md, "Upgrading"). One that no longer
 * validates (a field removed since) is left out and named.
 */
export function keptOperations(
  previous: OperationManifest,
  schemaSdl: string,
): { kept: OperationManifest; dropped: string[] } {
  const schema = buildSchema(schemaSdl);
  const kept: OperationManifest = {};
  const dropped: string[] = [];
  for (const [hash, text] of Object.entries(previous)) {
    let ok = false;
    let name = hash.slice(0, 12);
    try {
      const doc = parse(text);
      const op = doc.definitions.find(
        (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
      );
      name = op?.name?.value ?? name;
      // The hash is what a client sends: it must still be the text's own.
      ok = sha256Hex(text) === hash && validate(schema, doc).length === 0;
    } catch {
      ok = false;
    }
    if (ok) kept[hash] = text;
    else dropped.push(name);
  }
  return { kept, dropped };
}

/** `graphql(`…`)` (codegen's client preset) and gql`…` documents without interpolation. */
const EMBEDDED = /\b(?:graphql\(\s*|gql\s*)`([^`]*)`/g;

/**
 * The web app's documents: every `.graphql` file under `dir`, and documents embedded in `.ts` and
 * `.vue` files, leaving out generated code (`gql/`), tests and anything under `node_modules`.
 * A template with interpolations (`${signetImageFragment}`, the way @signet/vue's README adds its
 * fragment) is left out, or with `interpolations: 'strip'` (a client's own code, `npm run
 * persisted -- --from`) read without them: what they put in is fragments, and fragments are
 * found by name among all the sources.
 */
export function readWebDocuments(dir: string, options: { interpolations?: 'skip' | 'strip' } = {}): string[] {
  const files = (readdirSync(dir, { recursive: true }) as string[])
    .map((f) => f.split(path.sep).join('/'))
    .filter(
      (f) =>
        !f.startsWith('gql/') &&
        !f.split('/').includes('node_modules') &&
        !/\.(test|spec)\.ts$/.test(f) &&
        !f.endsWith('.d.ts'),
    )
    .sort();
  const sources: string[] = [];
  for (const f of files) {
    if (f.endsWith('.graphql')) sources.push(readFileSync(path.join(dir, f), 'utf8'));
    else if (/\.(ts|vue)$/.test(f)) {
      for (const m of readFileSync(path.join(dir, f), 'utf8').matchAll(EMBEDDED)) {
        const text = m[1]!;
        if (!text.includes('${')) sources.push(text);
        else if (options.interpolations === 'strip') sources.push(withoutInterpolations(text));
      }
    }
  }
  return sources;
}

/** A template's text with each `${…}` taken out (no nesting: a placeholder ends at its first `}`). */
function withoutInterpolations(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const open = text.indexOf('${', at);
    if (open < 0) return out + text.slice(at);
    const close = text.indexOf('}', open + 2);
    if (close < 0) return out + text.slice(at);
    out += text.slice(at, open);
    at = close + 1;
  }
}
