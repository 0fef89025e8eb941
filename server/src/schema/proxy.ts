import { proxyLinkScope } from '../images/visibility.js';
import { builder } from './builder.js';
import { ImageRef } from './images.js';
import { pageReads } from './page-projection.js';

export const ProxyMode = builder.enumType('ProxyMode', {
  description: 'How `/proxy/:id` answers: a 302 to a fresh signed URL, or the bytes themselves.',
  values: {
    REDIRECT: { value: 'redirect', description: '302 to a signed URL (cached no longer than it lives)' },
    STREAM: { value: 'stream', description: 'The object streamed through the gateway (Range, ETag)' },
  } as const,
});

builder.objectFields(ImageRef, (t) => ({
  proxyUrl: t.string({
    description:
      'A stable capability link for `<img src>` and other places that cannot run JavaScript or send ' +
      'headers. It keeps working while the image exists (up to PROXY_TOKEN_TTL_SECONDS); a link ' +
      'handed to a viewer who sees the image only because it is PUBLIC stops when it turns PRIVATE.',
    args: {
      mode: t.arg({ type: ProxyMode, required: false, defaultValue: 'redirect' }),
      preset: t.arg.string({
        required: false,
        description: 'A variant (one of imagePresets); the link opens only it',
      }),
    },
    extensions: pageReads(['id', 'ownerId']),
    // CPU only (one HMAC): no loader needed.
    resolve: (image, args, ctx) =>
      ctx.links.linkFor(
        image,
        args.mode ?? 'redirect',
        proxyLinkScope(ctx.viewer, image),
        args.preset == null ? undefined : ctx.variants.preset(args.preset).name,
      ),
  }),
}));
