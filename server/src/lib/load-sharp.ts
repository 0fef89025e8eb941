import type SharpModule from 'sharp';

let loading: Promise<typeof SharpModule> | undefined;

/**
 * sharp (libvips) on first use, not at start: loading it adds ~19 MiB to a node's RSS, and a node
 * that never decodes an image (one serving pages, redirects and subscriptions) need not carry it
 * (docs/operations.md, "Memory and V8 flags"). Later calls get the same module.
 */
export function loadSharp(): Promise<typeof SharpModule> {
  loading ??= import('sharp').then((m) => m.default);
  return loading;
}
