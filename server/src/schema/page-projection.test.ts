import {
  buildSchema as buildSdl,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLID,
  GraphQLList,
  GraphQLObjectType,
  type GraphQLResolveInfo,
  GraphQLSchema,
  GraphQLString,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema } from './index.js';
import { pagePlan } from './page-projection.js';

const pageFields = (info: GraphQLResolveInfo) => pagePlan(info).fields;

const schema = buildSchema();

/**
 * What the `images` resolver's info holds of `query`: its operation `name` (else the first), the
 * `images` field nodes graphql-js merges for it (through the operation's fragment spreads on
 * Query, in document order).
 */
function infoOf(query: string | DocumentNode, on: GraphQLSchema = schema, name?: string): GraphQLResolveInfo {
  const doc = typeof query === 'string' ? parse(query) : query;
  const ops = doc.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  const op = ops.find((o) => o.name?.value === name) ?? ops[0]!;
  const fragments = Object.fromEntries(
    doc.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((f) => [f.name.value, f]),
  );
  const images: FieldNode[] = [];
  const walk = (set: SelectionSetNode) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) images.push(sel);
      else if (sel.kind === Kind.FRAGMENT_SPREAD) walk(fragments[sel.name.value]!.selectionSet);
      else walk(sel.selectionSet);
    }
  };
  walk(op.selectionSet);
  return {
    fieldNodes: images,
    fragments,
    schema: on,
    operation: op,
    path: { prev: undefined, key: 'images', typename: 'Query' },
  } as unknown as GraphQLResolveInfo;
}

const fieldsOf = (query: string) => {
  const f = pageFields(infoOf(query));
  return f && [...f].sort();
};

describe('pageFields: what a page of images reads, from the query', () => {
  it('every field of the Image type says what it reads (an exposed property or pageReads)', () => {
    const image = schema.getType('Image');
    if (!isObjectType(image)) throw new Error('no Image type');
    const silent = Object.values(image.getFields())
      .filter(
        (f) => f.extensions.pothosExposedField === undefined && f.extensions.signetPageReads === undefined,
      )
      .map((f) => f.name);
    // A field listed here makes every page that asks for it read all columns: declare its reads.
    expect(silent).toEqual([]);
  });

  it('an original URL, a variant URL, and the union over aliases', () => {
    expect(fieldsOf('{ images { edges { node { id signedUrl { url } } } } }')).toEqual(
      ['createdAt', 'homeRegion', 'id', 'objectKey', 'replicatedRegions'].sort(),
    );
    expect(
      fieldsOf(
        '{ images { edges { node { a: signedUrl(minTtl: 600) { url } b: signedUrl(preset: "thumb") { url } } } } }',
      ),
    ).toEqual(
      [
        'animated',
        'contentType',
        'createdAt',
        'height',
        'homeRegion',
        'id',
        'objectKey',
        'replicatedRegions',
        'variantsReady',
        'width',
      ].sort(),
    );
    expect(fieldsOf('{ images { edges { node { __typename proxyUrl } } } }')).toEqual(['id', 'ownerId']);
    expect(fieldsOf('{ images { edges { cursor } pageInfo { endCursor } } }')).toEqual([]);
  });

  it('through fragment spreads and inline fragments at every level', () => {
    expect(
      fieldsOf(`
        { images { ...C } }
        fragment C on ImageConnection { ... on ImageConnection { edges { node { ...I } } } }
        fragment I on Image { key ... { byteSize } }
      `),
    ).toEqual(['byteSize', 'objectKey']);
  });

  it('reads everything when a field does not say, or the fragments nest too deep', () => {
    const bare = buildSdl(`
      type Query { images: ImageConnection }
      type ImageConnection { edges: [ImageEdge] }
      type ImageEdge { node: Image }
      type Image { id: ID }
    `);
    expect(pageFields(infoOf('{ images { edges { node { id } } } }', bare))).toBeUndefined();
    const nested = '... on Image { '.repeat(12);
    expect(fieldsOf(`{ images { edges { node { ${nested} id ${'} '.repeat(12)} } } } }`)).toBeUndefined();
  });

  it('reads everything when the connection or an edge asks for a field it does not know', () => {
    const image = new GraphQLObjectType({
      name: 'Image',
      fields: { id: { type: GraphQLID, extensions: { pothosExposedField: 'id' } } },
    });
    const edge = new GraphQLObjectType({
      name: 'ImageEdge',
      fields: { node: { type: image }, cursor: { type: GraphQLString }, score: { type: GraphQLString } },
    });
    const connection = new GraphQLObjectType({
      name: 'ImageConnection',
      fields: { edges: { type: new GraphQLList(edge) }, nodes: { type: new GraphQLList(image) } },
    });
    const withMore = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { images: { type: connection } } }),
    });
    expect(pageFields(infoOf('{ images { edges { cursor node { id } } } }', withMore))).toEqual(
      new Set(['id']),
    );
    expect(pageFields(infoOf('{ images { nodes { id } edges { node { id } } } }', withMore))).toBeUndefined();
    expect(pageFields(infoOf('{ images { edges { score node { id } } } }', withMore))).toBeUndefined();
  });

  it('answers per operation: a fragment merged with more fields in another operation reads those too', () => {
    const doc = parse(`
      query A { ...F }
      query B { ...F images { edges { node { byteSize } } } }
      fragment F on Query { images { edges { node { id } } } }
    `);
    const a = infoOf(doc, schema, 'A');
    const b = infoOf(doc, schema, 'B');
    expect(b.fieldNodes[0]).toBe(a.fieldNodes[0]); // the fragment's node comes first in both
    expect([...pageFields(a)!]).toEqual(['id']);
    expect([...pageFields(b)!].sort()).toEqual(['byteSize', 'id']);
  });

  it('answers an operation once', () => {
    const info = infoOf('{ images { edges { node { width } } } }');
    const first = pageFields(info);
    expect(pageFields(info)).toBe(first);
    expect(first && [...first]).toEqual(['width']);
  });

  it('asks for the total when totalCount is selected, through fragments, or when it cannot tell', () => {
    expect(pagePlan(infoOf('{ images { edges { cursor } } }')).withTotal).toBe(false);
    expect(
      pagePlan(infoOf('{ images { ...T } } fragment T on ImageConnection { ... { totalCount } }')).withTotal,
    ).toBe(true);
    expect(pagePlan(infoOf('{ images { ...Missing } }')).withTotal).toBe(true);
  });
});
