import { requireSignedIn } from '../auth/viewer.js';
import { builder } from './builder.js';

builder.objectType('Viewer', {
  description: 'Who is asking: the `sub` of the bearer token (or `demo` when auth is off).',
  fields: (t) => ({
    id: t.exposeID('id'),
    isAdmin: t.exposeBoolean('isAdmin'),
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
