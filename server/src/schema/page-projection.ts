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
 * Which columns a page of images reads (and whether it counts them), from the fields the query
 * asks of its images
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

/**
 * A variant's URL: also the original's type, size and animation (an animated original's variants
 * are its own URL), and which derived objects exist.
 */
export const VARIANT_URL_READS = every<UrlSource>()([
  ...ORIGINAL_URL_READS,
  'contentType',
  'width',
  'height',
  'animated',
  'variantsReady',
]);

/** Selections nest at most this deep (inline fragments) before the page simply reads every column. */
const MAX_DEPTH = 8;

/** What the connection and its edges may ask besides the way to the rows, reading nothing of them. */
const CONNECTION_FIELDS = new Set(['__typename', 'edges', 'pageInfo', 'totalCount']);
const EDGE_FIELDS = new Set(['__typename', 'cursor', 'node']);

/** What a page query asks of the statement: which row fields, and the total. */
export interface PagePlan {
  /** undefined: every column (some field reads everything, or the selection cannot be told). */
  fields: PageFields | undefined;
  /** `totalCount` is selected (also when the selection cannot be told: then it is computed). */
  withTotal: boolean;
}

/**
 * One answer per operation and response key: a document is parsed once and kept (yoga's parse
 * cache), and within an operation the page's field nodes are always the same ones. Not per field
 * node: a fragment's `images` can be merged with other `images` nodes in one operation of a
 * document and stand alone in another.
 */
const known = new WeakMap<object, Map<string | number, PagePlan>>();

/**
 * What the `images` connection's selection asks of the page statement: the row fields its nodes
 * read (`edges { node { … } }`, through fragments) and whether it wants the total.
 */
export function pagePlan(info: GraphQLResolveInfo): PagePlan {
  let byKey = known.get(info.operation);
  if (byKey === undefined) {
    byKey = new Map();
    known.set(info.operation, byKey);
  }
  let plan = byKey.get(info.path.key);
  if (plan === undefined) {
    plan = collect(info);
    byKey.set(info.path.key, plan);
  }
  return plan;
}

function collect(info: GraphQLResolveInfo): PagePlan {
  const connection = fieldsOf(
    info.fieldNodes.flatMap((n) => (n.selectionSet ? [n.selectionSet] : [])),
    info,
  );
  if (!connection) return { fields: undefined, withTotal: true };
  const withTotal = connection.some((f) => f.name.value === 'totalCount');
  return { fields: rowFields(connection, info), withTotal };
}

/** The row fields the nodes under these connection fields read; undefined: every column. */
function rowFields(connection: readonly FieldNode[], info: GraphQLResolveInfo): PageFields | undefined {
  const image = info.schema.getType('Image');
  if (!isObjectType(image)) return undefined;
  const imageFields = image.getFields();
  if (connection.some((f) => !CONNECTION_FIELDS.has(f.name.value))) return undefined;
  const edges = fieldsOf(selectionsOf(connection, 'edges'), info);
  if (!edges || edges.some((f) => !EDGE_FIELDS.has(f.name.value))) return undefined;
  const nodes = fieldsOf(selectionsOf(edges, 'node'), info);
  if (!nodes) return undefined;

  const out = new Set<RowField>();
  for (const sel of nodes) {
    if (sel.name.value === '__typename') continue;
    const field = imageFields[sel.name.value];
    const reads = field && readsOf(field, sel);
    if (!reads) return undefined;
    for (const r of reads) out.add(r);
  }
  return out;
}

/** The selection sets of the fields called `name`. */
const selectionsOf = (fields: readonly FieldNode[], name: string): SelectionSetNode[] =>
  fields.flatMap((f) => (f.name.value === name && f.selectionSet ? [f.selectionSet] : []));

/**
 * The fields these selection sets select, through fragments (each named one walked once: the
 * answer is a union); undefined when that cannot be told (a missing fragment, nested too deep).
 */
function fieldsOf(sets: readonly SelectionSetNode[], info: GraphQLResolveInfo): FieldNode[] | undefined {
  const found: FieldNode[] = [];
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode, depth: number): boolean => {
    if (depth > MAX_DEPTH) return false;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        found.push(sel);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        if (!walk(sel.selectionSet, depth + 1)) return false;
      } else if (!seen.has(sel.name.value)) {
        seen.add(sel.name.value);
        const fragment = info.fragments[sel.name.value];
        if (!fragment || !walk(fragment.selectionSet, depth + 1)) return false;
      }
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
