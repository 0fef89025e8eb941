import { randomUUID } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import type { Clock } from './clock.js';
import { crc32 } from './crc32.js';
import type { ImagesRepo } from './db/images-repo.js';
import type { Storage } from './storage/storage.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A real RGB PNG with a diagonal two-colour gradient (no image library, no network). */
export function makePng(
  width: number,
  height: number,
  from: [number, number, number],
  to: [number, number, number],
) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2;
      for (let c = 0; c < 3; c++) raw[row + 1 + x * 3 + c] = Math.round(from[c]! + (to[c]! - from[c]!) * t);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PALETTE: [number, number, number][] = [
  [255, 94, 58],
  [255, 204, 0],
  [52, 199, 89],
  [0, 122, 255],
  [88, 86, 214],
  [255, 45, 85],
  [90, 200, 250],
  [175, 82, 222],
];

/**
 * Stores `count` generated images for `ownerId` (object first, then row, so a failure never
 * leaves a row without its object). Returns their ids, newest last.
 */
export async function seedImages(opts: {
  storage: Storage;
  images: ImagesRepo;
  clock: Clock;
  ownerId: string;
  count: number;
  width?: number;
  height?: number;
}): Promise<string[]> {
  const { storage, images, clock, ownerId, count } = opts;
  const width = opts.width ?? 480;
  const height = opts.height ?? 320;
  const ids: string[] = [];
  const base = clock.now() - count;
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    const key = `u/${ownerId}/${id}.png`;
    const png = makePng(width, height, PALETTE[i % PALETTE.length]!, PALETTE[(i + 3) % PALETTE.length]!);
    const { etag } = await storage.put(key, png, 'image/png');
    await images.insert({
      id,
      ownerId,
      objectKey: key,
      contentType: 'image/png',
      byteSize: png.length,
      width,
      height,
      etag,
      // Generated PNG stills.
      animated: false,
      createdAt: new Date(base + i),
    });
    ids.push(id);
  }
  return ids;
}
