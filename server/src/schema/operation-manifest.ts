import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  type DefinitionNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  parse,
  print,
  visit,
} from 'graphql';

/** sha256 (hex) of a document's text → the text: the persisted operations allow-list. */
export type OperationManifest = Record<string, string>;

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

function spreads(def: DefinitionNode): string[] {
  const names: string[] = [];
  visit(def, { FragmentSpread: (node) => void names.push(node.name.value) });
  return names;
}

/** Operations first (in their order), then fragments by name: one order for every spelling. */
function ordered(defs: readonly DefinitionNode[]): DefinitionNode[] {
  const ops = defs.filter((d) => d.kind !== Kind.FRAGMENT_DEFINITION);
  const frags = (defs.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION) as FragmentDefinitionNode[]).sort(
    (a, b) => a.name.value.localeCompare(b.name.value),
  );
  return [...ops, ...frags];
}

/**
 * The form every spelling of one operation shares: `__typename` fields removed (Apollo Client
 * adds them to what it sends), definitions in one order, printed by graphql-js.
 */
export function canonicalDocument(doc: DocumentNode): string {
  const stripped = visit(doc, {
    Field: (node) => (node.name.value === '__typename' ? null : undefined),
  });
  return print({ ...stripped, definitions: ordered(stripped.definitions) });
}

/**
 * One standalone document per named operation of the sources (the operation plus every fragment
 * it uses, transitively), keyed by the sha256 of its printed text.
 */
export function buildManifest(sources: readonly string[]): OperationManifest {
  const defs = sources.flatMap((s) => parse(s).definitions);
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of defs) {
    if (d.kind !== Kind.FRAGMENT_DEFINITION) continue;
    if (fragments.has(d.name.value)) throw new Error(`fragment ${d.name.value} is defined twice`);
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

/** `graphql(`…`)` (codegen's client preset) and gql`…` documents without interpolation. */
const EMBEDDED = /\b(?:graphql\(\s*|gql\s*)`([^`]*)`/g;

/**
 * The web app's documents: every `.graphql` file under `dir`, and documents embedded in `.ts` and
 * `.vue` files, leaving out generated code (`gql/`) and tests.
 */
export function readWebDocuments(dir: string): string[] {
  const files = (readdirSync(dir, { recursive: true }) as string[])
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => !f.startsWith('gql/') && !/\.(test|spec)\.ts$/.test(f) && !f.endsWith('.d.ts'))
    .sort();
  const sources: string[] = [];
  for (const f of files) {
    if (f.endsWith('.graphql')) sources.push(readFileSync(path.join(dir, f), 'utf8'));
    else if (/\.(ts|vue)$/.test(f)) {
      for (const m of readFileSync(path.join(dir, f), 'utf8').matchAll(EMBEDDED)) {
        if (!m[1]!.includes('${')) sources.push(m[1]!);
      }
    }
  }
  return sources;
}
