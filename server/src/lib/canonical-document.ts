import { createHash } from 'node:crypto';
import {
  type DefinitionNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  print,
  visit,
} from 'graphql';

/**
 * One canonical text per GraphQL operation, however a client spells it: what persisted
 * operations are keyed by, at run time (the plugin) and at build time (the manifest tool).
 */
export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

export function spreads(def: DefinitionNode): string[] {
  const names: string[] = [];
  visit(def, { FragmentSpread: (node) => void names.push(node.name.value) });
  return names;
}

/** Operations first (in their order), then fragments by name: one order for every spelling. */
export function ordered(defs: readonly DefinitionNode[]): DefinitionNode[] {
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
