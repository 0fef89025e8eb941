import type { ImageRow } from '../db/types.js';
import { parseImageId, parseImageIds } from '../images/image-id.js';
import { builder } from './builder.js';
import { pagePlan, pageReads } from './page-projection.js';
import { decodeCursor, encodeCursor, parseFirst } from './validate.js';

export const ImageVisibility = builder.enumType('ImageVisibility', {
  description: 'Who may read an image by id (its list, `images`, is always the owner’s own).',
  values: {
    PRIVATE: { value: 'private', description: 'Its owner and admins (and services)' },
    PUBLIC: {
      value: 'public',
      description: 'Every viewer; also requests without a token when PUBLIC_READ_ANONYMOUS=true',
    },
  } as const,
});

export const ImageRef = builder.loadableObjectRef<ImageRow, string>('Image', {
  // One SQL statement for every image(id)/imagesByIds lookup of a request; the library orders
  // the rows by id and null-fills what the viewer may not see (no existence oracle).
  load: (ids, ctx) => ctx.images.visible(ctx.viewer, ids),
  sort: (row) => row.id,
});

ImageRef.implement({
  description: 'An image kept in object storage.',
  fields: (t) => ({
    id: t.exposeID('id'),
    key: t.exposeString('objectKey', { description: 'Object key in the bucket' }),
    contentType: t.exposeString('contentType'),
    byteSize: t.exposeInt('byteSize'),
    width: t.exposeInt('width', { nullable: true }),
    height: t.exposeInt('height', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    visibility: t.expose('visibility', { type: ImageVisibility }),
    placeholder: t.string({
      nullable: true,
      description:
        'ThumbHash of the image (base64; decode with thumbHashToDataURL), to paint while it loads. Null until computed, and for an image that could not be decoded.',
      // '' marks an undecodable object in the database (never retried); clients see null.
      resolve: (row) => row.placeholder || null,
      extensions: pageReads(['placeholder']),
    }),
  }),
});

builder.objectType('PageInfo', {
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    endCursor: t.exposeString('endCursor', { nullable: true }),
  }),
});

builder.objectType('ImageEdge', {
  fields: (t) => ({
    cursor: t.string({ resolve: (row) => encodeCursor(row) }),
    node: t.field({ type: ImageRef, resolve: (row) => row }),
  }),
});

builder.objectType('ImageConnection', {
  fields: (t) => ({
    edges: t.field({ type: ['ImageEdge'], resolve: (c) => c.edges }),
    pageInfo: t.field({
      type: 'PageInfo',
      resolve: (c) => ({ hasNextPage: c.hasNextPage, endCursor: c.endCursor }),
    }),
    totalCount: t.int({
      description:
        "The owner's live images, counted afresh by each request that asks for it: a scan of them all, so ask it on the first page, not on every page.",
      resolve: (c) => c.totalCount ?? 0,
    }),
  }),
});

builder.queryFields((t) => ({
  images: t.field({
    type: 'ImageConnection',
    description: "The viewer's images, newest first (keyset pagination; one SQL statement a page).",
    args: {
      first: t.arg.int({ defaultValue: 24, required: false, description: '1 to 100' }),
      after: t.arg.string({ required: false }),
    },
    resolve: async (_root, args, ctx, info) => {
      const plan = pagePlan(info);
      const page = await ctx.images.page(
        ctx.viewer,
        parseFirst(args.first),
        decodeCursor(args.after),
        plan.withTotal,
        plan.fields,
      );
      const last = page.rows.at(-1);
      return {
        edges: page.rows,
        hasNextPage: page.hasNextPage,
        endCursor: last ? encodeCursor(last) : null,
        totalCount: page.totalCount,
      };
    },
  }),
  image: t.field({
    type: ImageRef,
    nullable: true,
    description:
      'Null when missing or not visible to the viewer (its own, public, or any for admins and services).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => parseImageId(String(args.id)),
  }),
  imagesByIds: t.field({
    type: [ImageRef],
    nullable: { list: false, items: true },
    description: 'Same order as ids, null where not visible; at most 500 ids.',
    args: { ids: t.arg.idList({ required: true }) },
    resolve: (_root, args) => parseImageIds(args.ids.map(String)),
  }),
}));
