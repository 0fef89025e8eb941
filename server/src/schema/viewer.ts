import { requireSignedIn } from '../auth/viewer.js';
import { FORMATS } from '../uploads/sniff.js';
import { builder } from './builder.js';

builder.objectType('UploadQuota', {
  description:
    "The viewer's quota over its live images (deleted ones free their share), and what they use of it now.",
  fields: (t) => ({
    maxBytes: t.float({
      nullable: true,
      description: 'UPLOAD_QUOTA_BYTES; null when only the number of images is bounded',
      resolve: (q) => q.maxBytes ?? null,
    }),
    maxFiles: t.int({
      nullable: true,
      description: 'UPLOAD_QUOTA_FILES; null when only bytes are bounded',
      resolve: (q) => q.maxFiles ?? null,
    }),
    usedBytes: t.exposeFloat('usedBytes'),
    usedFiles: t.exposeInt('usedFiles'),
  }),
});

builder.objectType('UploadLimits', {
  description:
    'What an upload must fit, so a client can say so before it sends the file. The gateway checks ' +
    'every upload against the same limits (uploadImage); these are for showing and early refusals.',
  fields: (t) => ({
    maxFileBytes: t.exposeFloat('maxFileBytes', {
      description: 'UPLOAD_MAX_BYTES: the largest file accepted (a Float: it may pass 2^31)',
    }),
    maxPixels: t.exposeFloat('maxPixels', { description: 'UPLOAD_MAX_PIXELS: width × height at most' }),
    contentTypes: t.stringList({
      description: 'The content types accepted, judged by the file content (never by its name)',
      resolve: (l) => l.formats.map((f) => FORMATS[f].contentType),
    }),
    formatNames: t.stringList({
      description: 'The same formats by name ("JPEG", "PNG", …), in the order refusals name them',
      resolve: (l) => l.formats.map((f) => FORMATS[f].label),
    }),
    maxConcurrent: t.exposeInt('maxConcurrent', {
      description: 'UPLOAD_CONCURRENCY_PER_VIEWER: uploads one viewer may have in flight on a node',
    }),
    quota: t.field({
      type: 'UploadQuota',
      nullable: true,
      description: 'Null when no quota is set. Asking for it costs one SQL statement.',
      resolve: (_limits, _args, ctx) => ctx.images.uploadQuota(ctx.viewer),
    }),
  }),
});

builder.objectType('Viewer', {
  description: 'Who is asking: the `sub` of the bearer token (or `demo` when auth is off).',
  fields: (t) => ({
    id: t.exposeID('id'),
    isAdmin: t.exposeBoolean('isAdmin'),
    uploadLimits: t.field({
      type: 'UploadLimits',
      resolve: (viewer, _args, ctx) => ctx.images.uploadLimits(viewer),
    }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: 'Viewer',
    description: 'UNAUTHENTICATED without a token, even where anonymous reads of public images are on.',
    resolve: (_root, _args, ctx) => {
      requireSignedIn(ctx.viewer);
      return ctx.viewer;
    },
  }),
);
