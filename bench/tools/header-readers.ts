/**
 * Which header reader the upload path keeps (docs/architecture.md, "The upload pipeline"): the
 * hand-written readers (server/src/uploads), sharp's metadata() over the same bounded head, and
 * the image-size package, timed per call and measured for memory on real files made by sharp,
 * on heads cut where an upload's first read cuts them, and on a truncated file.
 *
 *   npx tsx bench/tools/header-readers.ts
 *
 * image-size is loaded only if it is installed (it is no longer a dependency of the server).
 */
import sharp, { type Sharp } from 'sharp';
import { inspectImage, inspectUpload, UploadBody } from '../../server/src/images/upload.js';
import { SNIFF_FIRST_BYTES } from '../../server/src/uploads/sniff.js';

type Reader = (head: Buffer, file: Blob) => Promise<{ width: number; height: number } | string>;

const limits = { uploadAllowSvg: false, uploadMaxPixels: 100_000_000 };

/** Synthetic content a JPEG encoder cannot flatten: gradient, noise and a few shapes. */
async function photo(width: number, height: number): Promise<Sharp> {
  const noise = await sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .png()
    .toBuffer();
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#ff5e3a"/>' +
      '<stop offset="1" stop-color="#007aff"/></linearGradient></defs>' +
      `<rect width="${width}" height="${height}" fill="url(#g)"/>` +
      `<circle cx="${width / 3}" cy="${height / 2}" r="${height / 4}" fill="#ffcc00" fill-opacity="0.7"/></svg>`,
  );
  return sharp(svg).composite([{ input: noise, blend: 'soft-light' }]);
}

async function samples(): Promise<{ name: string; file: Buffer }[]> {
  const base = await (await photo(4000, 3000)).raw().toBuffer({ resolveWithObject: true });
  const raw = () => sharp(base.data, { raw: base.info });
  const jpeg = await raw()
    .jpeg({ quality: 85 })
    .withExif({
      IFD0: { Make: 'Signet', Model: 'Bench' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 0/1' },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  // A phone-like JPEG: the frame header only after ~300 KB of APP segments (an XMP packet).
  const xmp = Buffer.alloc(300 * 1024, 0x20);
  const app = [];
  for (let at = 0; at < xmp.length; at += 60000) {
    const part = Buffer.concat([
      Buffer.from('http://ns.adobe.com/xap/1.0/\0', 'latin1'),
      xmp.subarray(at, at + 60000),
    ]);
    const seg = Buffer.alloc(4);
    seg.writeUInt16BE(0xffe1, 0);
    seg.writeUInt16BE(part.length + 2, 2);
    app.push(seg, part);
  }
  const lateSof = Buffer.concat([jpeg.subarray(0, 2), ...app, jpeg.subarray(2)]);
  const png = await raw().resize(2400).png().toBuffer();
  const webp = await raw().resize(2400).webp({ quality: 80 }).toBuffer();
  // Larger than the 1 MB bound, so no reader sees the whole file.
  const webpBig = await raw().webp({ lossless: true }).toBuffer();
  const gifBig = await raw().resize(2000).gif().toBuffer();
  const avif = await raw().resize(1200).avif({ quality: 50 }).toBuffer();
  const gif = await raw().resize(600).gif().toBuffer();
  return [
    { name: 'jpeg 4000x3000 exif6+gps', file: jpeg },
    { name: 'jpeg sof after 300KB', file: lateSof },
    { name: 'png 2400x1800', file: png },
    { name: 'webp 2400x1800', file: webp },
    { name: 'avif 1200x900', file: avif },
    { name: 'gif 600x450', file: gif },
    { name: 'webp lossless 4000x3000', file: webpBig },
    { name: 'gif 2000x1500', file: gifBig },
    { name: 'jpeg truncated at 40%', file: jpeg.subarray(0, Math.floor(jpeg.length * 0.4)) },
  ];
}

/**
 * The upload as the multipart parser hands it over: parts of 64 KB, read without copying. (Node
 * 20's own Blob streams a whole in-memory Blob as one copied chunk, which would measure that copy.)
 */
function chunked(bytes: Buffer): Blob {
  return {
    size: bytes.length,
    stream() {
      let at = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.subarray(at, at + 65536));
          at += 65536;
        },
      });
    },
  } as Blob;
}

/** What the upload path does: first read of 64 KB, reading on (doubling) only for JPEG/AVIF. */
const handWritten: Reader = async (_head, file) => {
  const body = new UploadBody(file, file.size + 1);
  try {
    const r = await inspectUpload(body, limits);
    return { width: r.width ?? 0, height: r.height ?? 0 };
  } catch (err) {
    return `error: ${(err as Error).message}`;
  } finally {
    await body.close();
  }
};

const handWrittenSync: Reader = async (head) => {
  try {
    const r = inspectImage(head, limits);
    return { width: r.width ?? 0, height: r.height ?? 0 };
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
};

const sharpMeta: Reader = async (head) => {
  try {
    const m = await sharp(head, { limitInputPixels: limits.uploadMaxPixels }).metadata();
    return { width: m.autoOrient.width, height: m.autoOrient.height };
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
};

async function loadImageSize(): Promise<Reader | undefined> {
  try {
    const mod = (await import('image-size' as string)) as {
      imageSize: (b: Uint8Array) => { width: number; height: number; orientation?: number };
    };
    return async (head) => {
      try {
        const r = mod.imageSize(head);
        const turned = (r.orientation ?? 1) >= 5;
        return turned ? { width: r.height, height: r.width } : { width: r.width, height: r.height };
      } catch (err) {
        return `error: ${(err as Error).message}`;
      }
    };
  } catch {
    return undefined;
  }
}

function fmt(r: Awaited<ReturnType<Reader>>): string {
  return typeof r === 'string' ? r.slice(0, 60) : `${r.width}x${r.height}`;
}

/**
 * µs per call as the median of 7 batches of 50 (the machine is shared: the median shrugs off a
 * batch that met another process), and the memory the calls left or peaked at.
 */
async function measure(reader: Reader, head: Buffer, file: Blob) {
  for (let i = 0; i < 20; i++) await reader(head, file);
  global.gc?.();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  const batches: number[] = [];
  for (let b = 0; b < 7; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 50; i++) await reader(head, file);
    batches.push(Number(process.hrtime.bigint() - t0) / 1000 / 50);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const after = process.memoryUsage();
  return {
    us: batches.sort((a, b) => a - b)[3]!,
    rssDeltaMB: (peakRss - before.rss) / 1048576,
    heapDeltaKB: (after.heapUsed - before.heapUsed) / 1024,
  };
}

async function main() {
  sharp.cache(false);
  const readers: [string, Reader][] = [
    ['hand-written (inspectUpload)', handWritten],
    ['hand-written (64 KB head only)', handWrittenSync],
    ['sharp metadata (64 KB head)', sharpMeta],
  ];
  const imageSize = await loadImageSize();
  if (imageSize) readers.push(['image-size (64 KB head)', imageSize]);
  for (const { name, file: bytes } of await samples()) {
    const file = chunked(bytes);
    const head = bytes.subarray(0, SNIFF_FIRST_BYTES);
    console.log(`\n${name}: ${(bytes.length / 1024).toFixed(0)} KB`);
    for (const [label, reader] of readers) {
      const result = fmt(await reader(head, file));
      const m = await measure(reader, head, file);
      console.log(
        `  ${label.padEnd(32)} ${result.padEnd(40)} ${m.us.toFixed(1).padStart(8)} µs/call  rss +${m.rssDeltaMB.toFixed(1)} MB  heap ${m.heapDeltaKB.toFixed(0)} KB`,
      );
    }
    // sharp with the head doubled up to 1 MB, as the JPEG reader reads on.
    const mb = bytes.subarray(0, 1024 * 1024);
    const m = await measure(sharpMeta, mb, file);
    console.log(
      `  ${'sharp metadata (1 MB head)'.padEnd(32)} ${fmt(await sharpMeta(mb, file)).padEnd(40)} ${m.us.toFixed(1).padStart(8)} µs/call  rss +${m.rssDeltaMB.toFixed(1)} MB`,
    );
  }
  // A decompression bomb: 50,000×50,000 declared in a few hundred bytes.
  const bomb = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  bomb.writeUInt32BE(50_000, 16);
  bomb.writeUInt32BE(50_000, 20);
  const { crc32 } = await import('../../server/src/crc32.js');
  bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29);
  console.log('\npng bomb 50000x50000 (header only):');
  const bombFile = chunked(bomb);
  for (const [label, reader] of readers)
    console.log(`  ${label.padEnd(32)} ${fmt(await reader(bomb, bombFile))}`);
}

await main();
