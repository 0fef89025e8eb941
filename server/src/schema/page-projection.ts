import {
  type FieldNode,
  type GraphQLField,
  type GraphQLResolveInfo,
  isObjectType,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import type { PageFields } from '../db/images-repo.js';
import type { ImageRow } from '../db/types.js';
import type { UrlSource } from '../images/variants.js';
import type { ObjectPlacement } from '../urls/resolved-url.js';

/**
 * Which columns a page of images reads, from the fields the query asks of its images
 * (docs/architecture.md, "The hot path", step 1). Each field of the Image type says what it reads
 * of its row: a `t.expose…` field reads the property it shows (Pothos records it on the field),
 * any other field declares it with `extensions: pageReads(…)`. A field that says nothing makes
 * the page read every column, so a field added without a declaration is slower, never wrong.
 */

type RowField = keyof ImageRow;

/** What a field reads of its row: a list, or a function of the argument names it is given. */
export type PageReads = readonly RowField[] | ((args: ReadonlySet<string>) => readonly RowField[]);

const PAGE_READS = 'signetPageReads';
/** Pothos' mark on a `t.expose…` field: the property it shows. */
const EXPOSED = 'pothosExposedField';

/** The field extension that declares what a field reads of its row on a page. */
export const pageReads = (reads: PageReads) => ({ [PAGE_READS]: reads });

/** Compiles only when `listed` names every key of `T` (a key added to `T` must be added here). */
const every =
  <T>() =>
  <const L extends readonly (keyof T & RowField)[]>(
    listed: L &
      ([Exclude<keyof T, L[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, L[number]> }),
  ): L =>
    listed;

/** An original's URL: its id and object, and where the object lives (regions.ts `regionOf`). */
export const ORIGINAL_URL_READS = every<ObjectPlacement & Pick<UrlSource, 'id' | 'objectKey'>>()([
  'id',
  'objectKey',
  'homeRegion',
  'replicatedRegions',
  'createdAt',
]);

/** A variant's URL: also the original's type and size, and which derived objects exist. */
export const VARIANT_URL_READS = every<UrlSource>()([
  ...ORIGINAL_URL_READS,
  'contentType',
  'width',
  'height',
  'variantsReady',
]);

/** Fragments nest at most this deep before the page simply reads every column. */
const MAX_DEPTH = 8;

/** One answer per field node: a document's AST is parsed once and kept (yoga's parse cache). */
const known = new WeakMap<FieldNode, PageFields | null>();

/**
 * The row fields the `images` connection's nodes read (`edges { node { … } }`, through
 * fragments), for the page statement to select; undefined when some field reads everything.
 */
export function pageFields(info: GraphQLResolveInfo): PageFields | undefined {
  const key = info.fieldNodes[0];
  if (key === undefined) return undefined;
  let fields = known.get(key);
  if (fields === undefined) {
    fields = collect(info) ?? null;
    known.set(key, fields);
  }
  return fields ?? undefined;
}

function collect(info: GraphQLResolveInfo): PageFields | undefined {
  const image = info.schema.getType('Image');
  if (!isObjectType(image)) return undefined;
  const imageFields = image.getFields();
  const out = new Set<RowField>();

  /** Adds what the Image selection `set` reads; false when something reads everything. */
  const visit = (set: SelectionSetNode, depth: number): boolean => {
    if (depth > MAX_DEPTH) return false;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (sel.name.value === '__typename') continue;
        const field = imageFields[sel.name.value];
        const reads = field && readsOf(field, sel);
        if (!reads) return false;
        for (const r of reads) out.add(r);
        continue;
      }
      const sub =
        sel.kind === Kind.INLINE_FRAGMENT ? sel.selectionSet : info.fragments[sel.name.value]?.selectionSet;
      if (!sub || !visit(sub, depth + 1)) return false;
    }
    return true;
  };

  const sets = info.fieldNodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : []));
  const edges = fieldsNamed(sets, 'edges', info);
  if (!edges) return undefined;
  const nodes = fieldsNamed(
    edges.flatMap((e) => (e.selectionSet ? [e.selectionSet] : [])),
    'node',
    info,
  );
  if (!nodes) return undefined;
  for (const node of nodes) {
    if (node.selectionSet && !visit(node.selectionSet, 0)) return undefined;
  }
  return out;
}

/**
 * The fields called `name` in these selection sets, looking through fragments; undefined when
 * that cannot be told (nested too deep), so that the page reads everything.
 */
function fieldsNamed(
  sets: readonly SelectionSetNode[],
  name: string,
  info: GraphQLResolveInfo,
): FieldNode[] | undefined {
  const found: FieldNode[] = [];
  const walk = (set: SelectionSetNode, depth: number): boolean => {
    if (depth > MAX_DEPTH) return false;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (sel.name.value === name) found.push(sel);
        continue;
      }
      const sub =
        sel.kind === Kind.INLINE_FRAGMENT ? sel.selectionSet : info.fragments[sel.name.value]?.selectionSet;
      if (!sub || !walk(sub, depth + 1)) return false;
    }
    return true;
  };
  return sets.every((set) => walk(set, 0)) ? found : undefined;
}

/** What `field` reads of its row as `node` asks for it; undefined when it does not say. */
function readsOf(field: GraphQLField<unknown, unknown>, node: FieldNode): readonly RowField[] | undefined {
  const ext = field.extensions as Record<string, unknown>;
  const exposed = ext[EXPOSED];
  if (typeof exposed === 'string') return [exposed as RowField];
  const reads = ext[PAGE_READS] as PageReads | undefined;
  if (reads === undefined) return undefined;
  if (typeof reads !== 'function') return reads;
  return reads(new Set(node.arguments?.map((a) => a.name.value)));
}
