import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import type { Gateway } from './gateway';

/**
 * A photo-like JPEG: a two-colour diagonal gradient with a few soft shapes (structure at every
 * scale, so thumbnails and placeholders are not flat) and grain on top (so it compresses like a
 * camera's picture, ~0.5–1 MB at 2400×1600, not like a flat gradient).
 */
export async function photo(width: number, height: number, seed: number): Promise<Buffer> {
  const hue = (seed * 47) % 360;
  const shapes = Array.from({ length: 6 }, (_, i) => {
    const cx = ((seed * 131 + i * 397) % 100) / 100;
    const cy = ((seed * 71 + i * 211) % 100) / 100;
    const r = 0.08 + ((seed + i * 13) % 10) / 60;
    const h = (hue + 60 + i * 40) % 360;
    return `<circle cx="${cx * width}" cy="${cy * height}" r="${r * height}" fill="hsl(${h},70%,${35 + i * 6}%)" opacity="0.7"/>`;
  }).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="hsl(${hue},75%,72%)"/>
      <stop offset="1" stop-color="hsl(${(hue + 150) % 360},60%,22%)"/>
    </linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>${shapes}</svg>`;
  // Grain: a 256-px tile of random grey levels, laid over the whole picture by libvips.
  const tile = 256;
  // Grey levels 128 ± 28: soft-light with mid grey changes nothing, so this is fine grain.
  const levels = randomBytes(tile * tile).map((v) => 100 + (v % 57));
  const grain = await sharp(levels, { raw: { width: tile, height: tile, channels: 1 } })
    .png()
    .toBuffer();
  return sharp(Buffer.from(svg))
    .composite([{ input: grain, tile: true, blend: 'soft-light' }])
    .jpeg({ quality: 80 })
    .toBuffer();
}

export interface Uploaded {
  id: string;
  byteSize: number;
  width: number | null;
  height: number | null;
}

/** Uploads through the gateway's GraphQL multipart endpoint, as the web app does (dev: as `demo`). */
export async function uploadPhoto(gateway: Gateway, bytes: Buffer, name: string): Promise<Uploaded> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: 'mutation Up($file: File!) { uploadImage(file: $file) { id byteSize width height } }',
      variables: { file: null },
    }),
  );
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), name);
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'apollo-require-preflight': 'true' },
    body: form,
  });
  const body = (await res.json()) as { data?: { uploadImage: Uploaded }; errors?: unknown[] };
  if (!body.data?.uploadImage) throw new Error(`upload of ${name} failed: ${JSON.stringify(body.errors)}`);
  return body.data.uploadImage;
}
