import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema } from '../../schema/index.js';
import { operationCost } from './use-cost-limit.js';

const schema = buildSchema();
const cost = (query: string, variables: Record<string, unknown> = {}, name?: string) =>
  operationCost(schema, parse(query), name, variables);

describe('operationCost', () => {
  it('counts each field once, and a list field’s selection once per item asked for', () => {
    expect(cost('{ viewer { id isAdmin } }')).toBe(3);
    // images: 1 + first × (edges 1 + node 1 + id 1)
    expect(cost('{ images(first: 10) { edges { node { id } } } }')).toBe(1 + 10 * 3);
    // the schema default (24) when first is left out
    expect(cost('{ images { edges { node { id } } } }')).toBe(1 + 24 * 3);
    // a page larger than any page may be costs like the largest: the resolver refuses it, saying
    // the bound, rather than the cost limit saying 'too costly'
    expect(cost('{ images(first: 100000) { edges { node { id } } } }')).toBe(1 + 100 * 3);
    // null, and a variable not given, serve the default page: they cost it too
    expect(cost('{ images(first: null) { edges { node { id } } } }')).toBe(1 + 24 * 3);
    expect(cost('query($n: Int) { images(first: $n) { edges { node { id } } } }', {})).toBe(1 + 24 * 3);
  });

  it('reads page sizes and id lists from variables, which a validation rule cannot see', () => {
    const q =
      'query($n: Int, $ids: [ID!]!) { images(first: $n) { totalCount } imagesByIds(ids: $ids) { id } }';
    // imagesByIds: one per id (its lookup) plus one per id per selected field.
    expect(cost(q, { n: 100, ids: ['a', 'b', 'c'] })).toBe(1 + 100 * 1 + 3 + 3 * 1);
    // A wrong-typed value is refused by coercion later; here it costs like one item.
    expect(cost(q, { n: 'lots', ids: 'x' })).toBe(1 + 1 + 1 + 1);
    expect(cost('{ imagesByIds(ids: ["a", "b"]) { id key } }')).toBe(2 + 2 * 2);
  });

  it('costs an id list by its length even when nothing (or only __typename) is selected', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => String(i));
    const preload = 'mutation($ids: [ID!]!) { preloadSignedUrls(ids: $ids) }';
    expect(cost(preload, { ids: ids(1) })).toBe(1);
    expect(cost(preload, { ids: ids(10_000) })).toBe(10_000);
    expect(cost(preload, { ids: ids(10_001) })).toBe(10_001);
    expect(cost(preload, { ids: [] })).toBe(1);
    // Inlined lists count the same, and aliases add up.
    const inline = `mutation { a: preloadSignedUrls(ids: ${JSON.stringify(ids(300))}) b: preloadSignedUrls(ids: ${JSON.stringify(ids(200))}) }`;
    expect(cost(inline)).toBe(300 + 200);
    expect(
      cost('mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { __typename } }', { ids: ids(400) }),
    ).toBe(400);
    expect(cost('query($ids: [ID!]!) { imagesByIds(ids: $ids) { __typename } }', { ids: ids(400) })).toBe(
      400,
    );
  });

  it('follows fragments and inline fragments, and ignores introspection and __typename', () => {
    const q = `query { images(first: 2) { edges { node { ...F ... on Image { key } __typename } } } __schema { types { name } } }
      fragment F on Image { id signedUrl { url } }`;
    expect(cost(q)).toBe(1 + 2 * (1 + 1 + 1 + 2 + 1));
  });

  it('walks each fragment once, however often it is spread', () => {
    // F1..Fn each spread the one before k times: k^n visits if each spread were walked again
    // (150^6: this test would never end), n fragments walked here.
    const nested = (levels: number, k: number) => {
      let doc = 'fragment F0 on Query { viewer { id } }\n';
      for (let i = 1; i <= levels; i++) {
        const spreads = Array.from({ length: k }, () => `...F${i - 1}`).join(' ');
        doc += `fragment F${i} on Query { ${spreads} }\n`;
      }
      return `query Q { ...F${levels} }\n${doc}`;
    };
    // viewer + id = 2, times k at every level.
    expect(cost(nested(3, 150))).toBe(2 * 150 ** 3);
    expect(cost(nested(6, 150))).toBe(2 * 150 ** 6);
    // A fragment spread twice counts twice: the cost is an upper bound, as for repeated fields.
    expect(cost('query { ...V ...V } fragment V on Query { viewer { id } }')).toBe(4);
  });

  it('picks the named operation, and is 0 for an unknown one', () => {
    const doc = 'query A { viewer { id } } query B { images(first: 3) { totalCount } }';
    expect(cost(doc, {}, 'A')).toBe(2);
    expect(cost(doc, {}, 'B')).toBe(4);
    expect(cost(doc, {}, 'C')).toBe(0);
  });

  it('multiplies nested lists (subscriptions and mutations too)', () => {
    const ids = Array.from({ length: 500 }, (_, i) => String(i));
    expect(cost('subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId } }', { ids })).toBe(
      500 + 500,
    );
    expect(cost('mutation($ids: [ID!]!) { refreshSignedUrls(ids: $ids) { url } }', { ids })).toBe(500 + 500);
  });

  it("costs federation's _entities like an id list, through the union's inline fragments", () => {
    const subgraph = buildSchema({ federation: true });
    const reps = Array.from({ length: 100 }, (_, i) => ({ __typename: 'Image', id: String(i) }));
    const q =
      'query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Image { id signedUrl { url } } } }';
    // one lookup per representation, plus per representation: id 1 + signedUrl 1 + url 1
    expect(operationCost(subgraph, parse(q), undefined, { r: reps })).toBe(100 + 100 * 3);
    expect(operationCost(subgraph, parse('{ _service { sdl } }'), undefined, {})).toBe(2);
  });
});
