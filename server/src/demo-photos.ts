import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from './clock.js';
import type { ImagesRepo } from './db/images-repo.js';
import { type ThumbHashLimits, thumbHashOf } from './images/thumbhash.js';
import { loadSharp } from './lib/load-sharp.js';
import type { Logger } from './logger.js';
import type { Storage } from './storage/storage.js';

/**
 * Demo photos for `npm start`: real-looking JPEGs of a few megapixels (a sky, a sun, ridges, and
 * grain so the encoder cannot flatten them: 0.5–1 MB each, like a phone's), made with sharp from
 * nothing, with no network. Generated once into DATA_DIR/demo-photos and read from there after.
 */
export interface DemoPhotoSpec {
  name: string;
  width: number;
  height: number;
  /** Sky from top to horizon, and the ridges. */
  colors: [string, string, string, string];
  seed: number;
}

export const DEMO_PHOTOS: readonly DemoPhotoSpec[] = [
  { name: 'dusk', width: 2400, height: 1600, colors: ['#1d3b6e', '#f29e4c', '#ffd27f', '#2b2d42'], seed: 1 },
  {
    name: 'glacier',
    width: 2400,
    height: 1600,
    colors: ['#5aa9e6', '#bfe3f5', '#f1faff', '#3d5a80'],
    seed: 2,
  },
  { name: 'tower', width: 1600, height: 2400, colors: ['#0b132b', '#5bc0be', '#e0fbfc', '#1c2541'], seed: 3 },
  {
    name: 'desert',
    width: 2400,
    height: 1600,
    colors: ['#ffb563', '#f4e285', '#fff1c1', '#8c4a2f'],
    seed: 4,
  },
  {
    name: 'forest',
    width: 2400,
    height: 1600,
    colors: ['#8ecae6', '#d8f3dc', '#f1faee', '#1b4332'],
    seed: 5,
  },
  {
    name: 'aurora',
    width: 1600,
    height: 2400,
    colors: ['#03071e', '#2d6a4f', '#95d5b2', '#10002b'],
    seed: 6,
  },
  {
    name: 'harbour',
    width: 2400,
    height: 1600,
    colors: ['#6d597a', '#e56b6f', '#eaac8b', '#355070'],
    seed: 7,
  },
  { name: 'storm', width: 2400, height: 1600, colors: ['#22223b', '#4a4e69', '#9a8c98', '#0d1b2a'], seed: 8 },
];

/** xorshift32: the same scene and grain for the same seed, on every machine. */
function random(seed: number): () => number {
  let x = (seed * 0x9e3779b1) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function sceneSvg(spec: DemoPhotoSpec, w: number, h: number): string {
  const next = random(spec.seed);
  const r = () => (next() % 1000) / 1000;
  const [top, mid, horizon, ridge] = spec.colors;
  const ridgeLine = (base: number, jag: number) => {
    const points = [`0,${h}`];
    for (let i = 0; i <= 8; i++) points.push(`${(w * i) / 8},${h * (base - jag * r())}`);
    points.push(`${w},${h}`);
    return points.join(' ');
  };
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    '<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">' +
    `<stop offset="0" stop-color="${top}"/><stop offset="0.6" stop-color="${mid}"/><stop offset="1" stop-color="${horizon}"/>` +
    '</linearGradient><radialGradient id="sun"><stop offset="0" stop-color="#fffbe6"/>' +
    '<stop offset="1" stop-color="#fffbe6" stop-opacity="0"/></radialGradient></defs>' +
    `<rect width="${w}" height="${h}" fill="url(#sky)"/>` +
    `<circle cx="${w * (0.2 + 0.6 * r())}" cy="${h * (0.25 + 0.2 * r())}" r="${Math.min(w, h) * 0.22}" fill="url(#sun)"/>` +
    `<polygon points="${ridgeLine(0.62, 0.15)}" fill="${ridge}" fill-opacity="0.55"/>` +
    `<polygon points="${ridgeLine(0.75, 0.12)}" fill="${ridge}" fill-opacity="0.8"/>` +
    `<polygon points="${ridgeLine(0.9, 0.08)}" fill="${ridge}"/></svg>`
  );
}

/** Side of the grain tile: repeated over the photo (JPEG codes each 8×8 block on its own, so a repeat saves no bytes). */
const GRAIN_TILE = 256;

/** Film grain: one channel, triangular around mid-grey, which soft-light leaves unchanged. */
function grainTile(spec: DemoPhotoSpec): Buffer {
  const next = random(spec.seed + 1000);
  const out = Buffer.allocUnsafe(GRAIN_TILE * GRAIN_TILE);
  for (let i = 0; i < out.length; i++) {
    const x = next();
    out[i] = 128 + ((((x & 0xff) + ((x >>> 8) & 0xff) - 255) * 50) >> 8);
  }
  return out;
}

/**
 * One demo photo as a JPEG. The scene is drawn at a quarter of the size and scaled up (smooth
 * shapes lose nothing, and rasterising megapixels of SVG is the slow part), then grained; every
 * step after the tiny SVG runs in libvips, off the main thread.
 */
export async function makeDemoPhoto(spec: DemoPhotoSpec): Promise<Buffer> {
  const { width: w, height: h } = spec;
  const sharp = await loadSharp();
  const scene = await sharp(Buffer.from(sceneSvg(spec, w / 4, h / 4)))
    .resize(w, h, { kernel: 'cubic' })
    .removeAlpha()
    .toBuffer();
  return sharp(scene)
    .composite([
      {
        input: grainTile(spec),
        raw: { width: GRAIN_TILE, height: GRAIN_TILE, channels: 1 },
        tile: true,
        blend: 'soft-light',
      },
    ])
    .jpeg({ quality: 82 })
    .toBuffer();
}

/** The photo from the cache directory, made and kept there the first time. */
async function cachedDemoPhoto(dir: string, spec: DemoPhotoSpec): Promise<Buffer> {
  const file = path.join(dir, `${spec.name}-${spec.width}x${spec.height}.jpg`);
  try {
    return await readFile(file);
  } catch {
    const bytes = await makeDemoPhoto(spec);
    await mkdir(dir, { recursive: true });
    // Written aside and renamed: a start killed halfway never leaves half a photo to reuse.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
    return bytes;
  }
}

/**
 * Seeds `count` demo photos for `ownerId` (the eight scenes in turn), each with its placeholder:
 * the object first, then the row, so a failure never leaves a row without its object. The caller
 * seeds only when the owner has no images (so a restart seeds nothing). Returns the ids, newest last.
 */
export async function seedDemoPhotos(opts: {
  storage: Pick<Storage, 'put'>;
  images: Pick<ImagesRepo, 'insert'>;
  clock: Clock;
  logger?: Logger;
  ownerId: string;
  count: number;
  /** Where generated photos are kept (DATA_DIR/demo-photos). */
  cacheDir: string;
  limits: ThumbHashLimits;
}): Promise<string[]> {
  const { storage, images, clock, ownerId, count } = opts;
  const started = Date.now();
  // One at a time: libvips still spreads each over its threads, and a first start holds the
  // pixels of one photo rather than eight (docs/benchmarks.md, scenario 10c: the start's peak RSS).
  const photos: { spec: DemoPhotoSpec; bytes: Buffer; placeholder: string }[] = [];
  for (const spec of DEMO_PHOTOS.slice(0, Math.min(count, DEMO_PHOTOS.length))) {
    const bytes = await cachedDemoPhoto(opts.cacheDir, spec);
    photos.push({ spec, bytes, placeholder: await thumbHashOf(bytes, opts.limits) });
  }
  const ids: string[] = [];
  const base = clock.now() - count;
  for (let i = 0; i < count; i++) {
    const { spec, bytes, placeholder } = photos[i % photos.length]!;
    const id = randomUUID();
    const key = `u/${encodeURIComponent(ownerId)}/${id}.jpg`;
    const { etag } = await storage.put(key, bytes, 'image/jpeg');
    await images.insert({
      id,
      ownerId,
      objectKey: key,
      contentType: 'image/jpeg',
      byteSize: bytes.length,
      width: spec.width,
      height: spec.height,
      etag,
      placeholder,
      // Generated JPEG stills.
      animated: false,
      createdAt: new Date(base + i),
    });
    ids.push(id);
  }
  opts.logger?.info({ count, ms: Date.now() - started }, 'seeded demo photos');
  return ids;
}
