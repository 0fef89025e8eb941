import { execFile } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Gateway } from './gateway';
import { noisyPng } from './png';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * A few thousand images for the gateway's demo viewer, cheaply: the gateway stops, `count` tiny
 * PNGs are written into its local bucket and registered by `signet import` (the built CLI, on the
 * same DATA_DIR and embedded database), and the gateway starts again on the same port and data.
 * Every file has its own mtime (a second apart), so the gallery's order is the files' order.
 */
export async function bulkSeed(gateway: Gateway, count: number, prefix = 'bulk'): Promise<void> {
  await gateway.stop();
  const dir = path.join(gateway.dataDir, 'bucket', prefix);
  await mkdir(dir, { recursive: true });
  const png = noisyPng(24, 16, 8);
  const base = Date.UTC(2025, 0, 1) / 1000;
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `img-${String(i).padStart(6, '0')}.png`);
    await writeFile(file, png);
    await utimes(file, base + i, base + i);
  }
  await promisify(execFile)(
    process.execPath,
    ['server/dist/cli/main.js', 'import', '--owner', 'demo', '--prefix', `${prefix}/`, '--batch', '1000'],
    {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'development', DATA_DIR: gateway.dataDir, LOG_LEVEL: 'warn' },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  await gateway.restart({});
}
