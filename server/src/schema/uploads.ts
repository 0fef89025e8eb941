import { badInput } from '../errors/index.js';
import { parseImageId } from '../images/image-id.js';
import { builder } from './builder.js';
import { ImageRef, ImageVisibility } from './images.js';

const isFile = (v: unknown): v is File =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Blob).stream === 'function' &&
  typeof (v as Blob).size === 'number';

builder.scalarType('File', {
  description: 'A file sent as a part of a GraphQL multipart request (input only).',
  serialize: () => {
    throw new Error('File is an input-only scalar');
  },
  parseValue: (value) => {
    if (!isFile(value)) throw badInput('A File must be sent as a part of a multipart request');
    return value;
  },
  parseLiteral: () => {
    throw badInput('A File must be sent as a part of a multipart request, not written in the query');
  },
});

builder.mutationFields((t) => ({
  uploadImage: t.field({
    type: ImageRef,
    description:
      'Stores an image for the viewer. The type is judged by the content (JPEG, PNG, GIF, WebP, AVIF), ' +
      'never by the file name; width and height come from its header. Errors: PAYLOAD_TOO_LARGE ' +
      '(UPLOAD_MAX_BYTES, or UPLOAD_QUOTA_BYTES), UNSUPPORTED_MEDIA_TYPE, BAD_USER_INPUT (unreadable ' +
      'header, too many pixels), RATE_LIMITED (too many uploads in flight), FORBIDDEN (UPLOAD_QUOTA_FILES). ' +
      'One file per request. PRIVATE unless `visibility` says otherwise.',
    args: {
      file: t.arg({ type: 'File', required: true }),
      visibility: t.arg({ type: ImageVisibility, required: false, defaultValue: 'private' }),
    },
    resolve: (_root, args, ctx) => ctx.images.upload(ctx.viewer, args.file, args.visibility ?? 'private'),
  }),
  setImageVisibility: t.field({
    type: ImageRef,
    nullable: true,
    description:
      'Owner or admin. Returns the image, or null when it is missing or not visible to the viewer ' +
      '(indistinguishable). FORBIDDEN when the viewer sees the image (it is PUBLIC) but it is not ' +
      "theirs. Turning an image PRIVATE stops other viewers' subscriptions and public-scoped proxy links.",
    args: {
      id: t.arg.id({ required: true }),
      visibility: t.arg({ type: ImageVisibility, required: true }),
    },
    resolve: (_root, args, ctx) =>
      ctx.images.setVisibility(ctx.viewer, parseImageId(String(args.id)), args.visibility),
  }),
  deleteImage: t.boolean({
    description:
      'Deletes an image (owner or admin): at once the object and its variants, and the cached URLs; ' +
      'the image disappears from every query and its proxy links stop working. Its row is kept, ' +
      'without the placeholder, dimensions or ETag, for DELETED_ROW_RETENTION_DAYS (30 by default), ' +
      'then removed. False when there is no such image, it was already deleted, or the viewer ' +
      'cannot see it: the three are indistinguishable. FORBIDDEN when the viewer sees it (PUBLIC) ' +
      'but it is not theirs.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.images.delete(ctx.viewer, parseImageId(String(args.id))),
  }),
}));
