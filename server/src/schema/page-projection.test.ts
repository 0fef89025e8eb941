import {
  buildSchema as buildSdl,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  parse,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema } from './index.js';
import { pageFields } from './page-projection.js';

const schema = buildSchema();

/** What the `images` resolver's info holds of `query` (the first field of its operation). */
function infoOf(query: string, on: GraphQLSchema = schema): GraphQLResolveInfo {
  const doc = parse(query);
  const op = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  const fragments = Object.fromEntries(
    doc.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((f) => [f.name.value, f]),
  );
  const images = op.selectionSet.selections.filter((s): s is FieldNode => s.kind === Kind.FIELD);
  return { fieldNodes: images, fragments, schema: on } as unknown as GraphQLResolveInfo;
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
    const nested = Array.from({ length: 12 }, (_, i) => `fragment F${i} on Image { ...F${i + 1} }`).join(
      '\n',
    );
    expect(
      fieldsOf(`{ images { edges { node { ...F0 } } } } ${nested} fragment F12 on Image { id }`),
    ).toBeUndefined();
  });

  it('answers a field node once (the same document asks the same)', () => {
    const info = infoOf('{ images { edges { node { width } } } }');
    const first = pageFields(info);
    expect(pageFields(info)).toBe(first);
    expect(first && [...first]).toEqual(['width']);
  });
});
