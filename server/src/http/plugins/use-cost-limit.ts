import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  getNamedType,
  getOperationAST,
  isInterfaceType,
  isObjectType,
  isUnionType,
  Kind,
  type SelectionSetNode,
  valueFromAST,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { badInput } from '../../errors/index.js';
import { MAX_PAGE_SIZE } from '../../schema/validate.js';

/**
 * Upper bound on the fields one operation may resolve. The web app's gallery page of 100 costs
 * 2,201, @signet/vue's 500-id URL refetches and its subscription to 500 ids 3,500-4,000 (every
 * SignedUrl field, and a preset's srcset), a page of 100 with every Image field once (`edges { node { … } }`) 2,501; ten aliased pages do not
 * fit. A preloadSignedUrls of the most ids it takes (10,000) costs exactly this.
 */
export const MAX_COST = 10_000;

type Variables = Readonly<Record<string, unknown>> | null | undefined;

/**
 * How many times a field's selection runs (its page size, `first`/`last`, or its id list's
 * length) and whether the field itself works per id. A field taking `ids` looks up, signs or
 * queues each of them whatever is selected (preloadSignedUrls selects nothing at all), so the
 * list costs one per id on top of its selection; a page's own cost is its one statement.
 */
function listSize(
  def: GraphQLField<unknown, unknown>,
  node: FieldNode,
  variables: Variables,
): { items: number; perId: boolean } {
  for (const arg of def.args) {
    const page = arg.name === 'first' || arg.name === 'last';
    // `representations`: federation's `_entities` (docs/federation.md), one image lookup each.
    const ids = arg.name === 'ids' || arg.name === 'representations';
    if (!page && !ids) continue;
    const given = node.arguments?.find((a) => a.name.value === arg.name)?.value;
    // An argument left out, a variable not given and an explicit null all get the default
    // (`images(first: null)` serves 24, as `images` does).
    const value =
      (given === undefined
        ? undefined
        : given.kind === Kind.VARIABLE
          ? variables?.[given.name.value]
          : valueFromAST(given, arg.type, variables ?? undefined)) ?? arg.defaultValue;
    // A wrong-typed value fails coercion later; it costs like one item here. A page larger than
    // any page may be costs like the largest: the resolver refuses it with a message naming the
    // bound ('first must be between 1 and 100'), which says more than 'too costly'.
    if (page && typeof value === 'number' && Number.isFinite(value))
      return { items: Math.min(MAX_PAGE_SIZE, Math.max(1, value)), perId: false };
    if (ids && Array.isArray(value)) return { items: Math.max(1, value.length), perId: true };
  }
  return { items: 1, perId: false };
}

/**
 * The fields an operation resolves, counting list fields by the size the client asked for (taken
 * from variables too, which a validation rule cannot see), and each id of an id list once more. Introspection fields cost nothing here:
 * GRAPHQL_INTROSPECTION and the token limit govern them.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Variables,
): number {
  const op = getOperationAST(document, operationName);
  if (!op) return 0;
  const root =
    op.operation === 'query'
      ? schema.getQueryType()
      : op.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions)
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const inside = new Set<string>();
  // A fragment costs the same wherever it is spread (its type condition and selection, and the
  // operation's variables, are fixed): each is walked once. Walked again at every spread, a few
  // fragments spreading one another 150 times each (well within the token and depth limits)
  // made ~3.4 million visits and held the event loop for over a second.
  const fragmentCost = new Map<string, number>();

  const costOf = (set: SelectionSetNode, type: GraphQLNamedType | null | undefined): number => {
    // A union (federation's `_Entity`) has no fields of its own: its inline fragments are costed.
    if (!isObjectType(type) && !isInterfaceType(type) && !isUnionType(type)) return 0;
    let cost = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (sel.name.value.startsWith('__') || isUnionType(type)) continue;
        const def = type.getFields()[sel.name.value];
        if (!def) continue;
        const { items, perId } = listSize(def, sel, variables);
        cost += perId ? items : 1;
        if (sel.selectionSet) cost += items * costOf(sel.selectionSet, getNamedType(def.type));
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const t = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : type;
        cost += costOf(sel.selectionSet, t);
      } else {
        const name = sel.name.value;
        const frag = fragments.get(name);
        // Validation refuses fragment cycles; the guard only keeps this function total.
        if (!frag || inside.has(name)) continue;
        let own = fragmentCost.get(name);
        if (own === undefined) {
          inside.add(name);
          own = costOf(frag.selectionSet, schema.getType(frag.typeCondition.name.value));
          inside.delete(name);
          fragmentCost.set(name, own);
        }
        cost += own;
      }
      if (cost > Number.MAX_SAFE_INTEGER) return cost;
    }
    return cost;
  };
  return costOf(op.selectionSet, root);
}

/** The refusal of an operation over MAX_COST with these variables, or undefined (also sse-subscriptions.ts). */
export function costRefusal(args: {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null | undefined;
  variableValues?: Variables;
}) {
  const cost = operationCost(args.schema, args.document, args.operationName, args.variableValues);
  if (cost <= MAX_COST) return undefined;
  return {
    errors: [
      badInput(`The operation is too costly: about ${Math.round(cost)} fields, at most ${MAX_COST} allowed`, {
        cost: Math.round(cost),
        maxCost: MAX_COST,
      }),
    ],
  };
}

/** Refuses (BAD_USER_INPUT) an operation whose cost exceeds MAX_COST before any resolver runs. */
export function useCostLimit(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = costRefusal(args);
      if (refused) setResultAndStopExecution(refused);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = costRefusal(args);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}
