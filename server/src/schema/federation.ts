import {
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  GraphQLUnionType,
  Kind,
  lexicographicSortSchema,
  parse,
  print,
  printSchema,
  visit,
} from 'graphql';
import type { ImageRow } from '../db/types.js';
import { badInput } from '../errors/index.js';
import { isImageId, MAX_IDS } from '../images/image-id.js';
import type { Context } from './context.js';
import { ImageRef } from './images.js';

/**
 * The federation v2 subgraph of Signet (docs/federation.md): `Image @key(fields: "id")`, plus the
 * two root fields the federation spec asks of a subgraph, `_service { sdl }` and
 * `_entities(representations:)`.
 *
 * Written against graphql-js rather than with @pothos/plugin-federation: the plugin (4.4.2)
 * imports @pothos/plugin-directives at run time without declaring it as a dependency, so it does
 * not load here. What it would add is exactly this: a key directive in the printed SDL and an
 * `_entities` field whose references load through the `Image` loader.
 */

/**
 * Most references one `_entities` call may carry. A gateway sends every reference of a step of its
 * query plan in one call (Hive Gateway does), so a products page of 50 products × 12 images is 600
 * of them: four times `imagesByIds`' bound, the visibility batch's. The cost limit then bounds
 * what is asked of each (docs/federation.md, "Limits that still apply, and one that cannot").
 */
export const MAX_ENTITIES = 4 * MAX_IDS;

/** The federation spec version the SDL links (composition supports it, Hive Gateway too). */
const FEDERATION_LINK = 'https://specs.apollo.dev/federation/v2.6';

/** Entities of this subgraph and their key fields (one today). */
const ENTITY_KEYS: Record<string, string> = { Image: 'id' };

const AnyScalar = new GraphQLScalarType({
  name: '_Any',
  description: 'An entity representation: `{ __typename, ...key fields }`',
});

const ServiceType = new GraphQLObjectType({
  name: '_Service',
  fields: { sdl: { type: new GraphQLNonNull(GraphQLString) } },
});

/**
 * The SDL a gateway composes: the schema as `printSchema` prints it, with `@key` on each entity
 * and the `@link` that imports it. Built by editing the parsed document, never the text.
 */
export function subgraphSdl(schema: GraphQLSchema): string {
  const doc = visit(parse(printSchema(lexicographicSortSchema(schema))), {
    ObjectTypeDefinition(node) {
      const fields = ENTITY_KEYS[node.name.value];
      if (!fields) return undefined;
      return {
        ...node,
        directives: [
          ...(node.directives ?? []),
          {
            kind: Kind.DIRECTIVE,
            name: { kind: Kind.NAME, value: 'key' },
            arguments: [
              {
                kind: Kind.ARGUMENT,
                name: { kind: Kind.NAME, value: 'fields' },
                value: { kind: Kind.STRING, value: fields },
              },
            ],
          },
        ],
      };
    },
  });
  const link = `extend schema @link(url: "${FEDERATION_LINK}", import: ["@key"])`;
  return `${link}\n\n${print(doc)}\n`;
}

/**
 * Image references of one `_entities` call → rows, through the same loader as `image(id)` and
 * `imagesByIds`: one SQL statement for all of them (`ctx.images.visible`, so the visibility rules
 * of a viewer apply unchanged), null where the viewer may not see the image or it does not exist.
 */
export async function resolveImageReferences(
  representations: readonly unknown[],
  ctx: Context,
): Promise<(ImageRow | null)[]> {
  if (representations.length > MAX_ENTITIES) {
    throw badInput(`representations takes at most ${MAX_ENTITIES} entities, got ${representations.length}`, {
      argument: 'representations',
    });
  }
  // An id that is no image id is null, as a missing image is: the references come from another
  // subgraph's data (a legacy id, a typo in a catalogue), and one of them must not blank every
  // image of the gateway's answer. Only a reference that is no Image reference at all is refused.
  const ids = representations.map((r) => {
    const rep = r as { __typename?: unknown; id?: unknown } | null;
    const typename = rep && typeof rep === 'object' ? rep.__typename : undefined;
    if (typeof typename !== 'string' || !Object.hasOwn(ENTITY_KEYS, typename)) {
      throw badInput(`representations must be Image references ({ __typename: "Image", id })`, {
        argument: 'representations',
      });
    }
    const id = (rep as { id?: unknown }).id;
    return typeof id === 'string' && isImageId(id) ? id.toLowerCase() : undefined;
  });
  const wanted = ids.filter((id): id is string => id !== undefined);
  const rows = await ImageRef.getDataloader(ctx).loadMany(wanted);
  let next = 0;
  return ids.map((id) => {
    if (id === undefined) return null;
    const row = rows[next++];
    if (row instanceof Error) throw row;
    return row ?? null;
  });
}

/** The executable subgraph schema: `schema` with `_entities` and `_service` on Query. */
export function toSubgraph(schema: GraphQLSchema): GraphQLSchema {
  const sdl = subgraphSdl(schema);
  const config = schema.toConfig();
  const query = schema.getQueryType()!;
  const image = schema.getType('Image') as GraphQLObjectType;
  const EntityUnion = new GraphQLUnionType({
    name: '_Entity',
    types: [image],
    // Every entity of this subgraph is an Image (ENTITY_KEYS).
    resolveType: () => 'Image',
  });
  const federatedQuery = new GraphQLObjectType({
    ...query.toConfig(),
    fields: () => ({
      ...query.toConfig().fields,
      _entities: {
        type: new GraphQLNonNull(new GraphQLList(EntityUnion)),
        description: 'Federation: the entities of the given representations, null where not visible.',
        args: {
          representations: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(AnyScalar))) },
        },
        resolve: (_root: unknown, args: { representations: unknown[] }, ctx: Context) =>
          resolveImageReferences(args.representations, ctx),
      },
      _service: {
        type: new GraphQLNonNull(ServiceType),
        description: 'Federation: the SDL of this subgraph, for composition.',
        resolve: () => ({ sdl }),
      },
    }),
  });
  return new GraphQLSchema({
    ...config,
    query: federatedQuery,
    types: [...config.types.filter((t) => t !== query), federatedQuery, EntityUnion, ServiceType, AnyScalar],
  });
}
