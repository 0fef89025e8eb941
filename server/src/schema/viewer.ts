import { builder } from './builder.js';

builder.objectType('Viewer', {
  description: 'Who is asking: the `sub` of the bearer token (or `demo` when auth is off).',
  fields: (t) => ({
    id: t.exposeID('id'),
    isAdmin: t.exposeBoolean('isAdmin'),
  }),
});

builder.queryField('viewer', (t) => t.field({ type: 'Viewer', resolve: (_root, _args, ctx) => ctx.viewer }));
