import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalStorage, isPutTempName, sideFileObjectName } from './local.js';
import type { Storage } from './storage.js';

// The local driver's removeDebris on a real folder: it removes only files of exactly the names a
// put writes (`<object>.<pid>.<ms>.tmp`, `<object>.signet-meta.json` without its object), never
// an operator's own files that merely end the same way (docs/architecture.md, "Deleting an
// image"). Found by review: every `*.tmp` anywhere in the bucket folder was removed once old.

const HOUR = 3600 * 1000;
const SIDE = JSON.stringify({ contentType: 'image/jpeg', etag: '"3e8-19b2c"' });

let root: string;
let storage: Storage;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'signet-debris-'));
  storage = createLocalStorage({ root, publicUrl: 'http://gw.test', secret: 's'.repeat(32) });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A file below the bucket folder, last changed `ageMs` ago. */
async function file(rel: string, content: string, ageMs: number): Promise<void> {
  const full = path.join(root, ...rel.split('/'));
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, content);
  const t = new Date(Date.now() - ageMs);
  await utimes(full, t, t);
}

async function exists(rel: string): Promise<boolean> {
  return stat(path.join(root, ...rel.split('/'))).then(
    () => true,
    () => false,
  );
}

describe('local driver: removeDebris removes only what a put writes', () => {
  it("leaves an operator's report.tmp and x.tmp past the grace; removes a put's stale temporary file", async () => {
    const operators = [
      'report.tmp',
      'x.tmp',
      'u/legacy/report.tmp',
      'import/photo.jpg.tmp',
      'import/photo.jpg.1.tmp',
      'import/photo.jpg.01.123.tmp',
      'import/photo.jpg.12.0123.tmp',
      'import/photo.jpg.0.123.tmp',
      'import/.12.123.tmp',
      'import/photo.jpg.1a.123.tmp',
      'import/photo.jpg.12.12 3.tmp',
      'import/photo.jpg.12.123.TMP',
    ];
    for (const rel of operators) await file(rel, 'the operator’s', 10 * HOUR);
    // What a put killed mid-write leaves: `<object file>.<pid>.<ms>.tmp`, old and young.
    await file('u/alice/p.jpg.4242.1765000000000.tmp', 'partial', 10 * HOUR);
    await file('top.png.7.1765000000000.tmp', 'partial', 10 * HOUR);
    await file('u/alice/q.jpg.4242.1765000000001.tmp', 'partial', 0);

    const removed = await storage.removeDebris!(new Date(Date.now() - HOUR));

    expect(removed.map((r) => r.path.split(path.sep).join('/')).sort()).toEqual([
      'top.png.7.1765000000000.tmp',
      'u/alice/p.jpg.4242.1765000000000.tmp',
    ]);
    for (const rel of operators) expect(await exists(rel), rel).toBe(true);
    expect(await exists('u/alice/q.jpg.4242.1765000000001.tmp')).toBe(true);
  });

  it("removes a put's orphaned side file; leaves side files with their object and files only named like one", async () => {
    await file('u/alice/gone.jpg.signet-meta.json', SIDE, 10 * HOUR); // its object was deleted
    await file('u/alice/kept.jpg', 'pixels', 10 * HOUR);
    await file('u/alice/kept.jpg.signet-meta.json', SIDE, 10 * HOUR);
    const operators: [string, string][] = [
      ['.signet-meta.json', SIDE], // no object name: no put writes it
      ['u/alice/..signet-meta.json', SIDE], // object `.`: no key has that segment
      ['notes.signet-meta.json', JSON.stringify({ owner: 'ops', contentType: 'text/plain' })],
      ['list.signet-meta.json', '["a","b"]'],
      ['big.signet-meta.json', JSON.stringify({ contentType: 'x'.repeat(10_000) })],
      ['plain.signet-meta.json', 'not json'],
    ];
    for (const [rel, content] of operators) await file(rel, content, 10 * HOUR);

    const removed = await storage.removeDebris!(new Date(Date.now() - HOUR));

    expect(removed.map((r) => r.path.split(path.sep).join('/'))).toEqual([
      'u/alice/gone.jpg.signet-meta.json',
    ]);
    for (const [rel] of operators) expect(await exists(rel), rel).toBe(true);
    expect(await exists('u/alice/kept.jpg.signet-meta.json')).toBe(true);
  });

  it("the name a put really writes is the one the sweep recognises, and a live put's file stays", async () => {
    const body = new PassThrough();
    const size = 64 * 1024;
    const put = storage.put('u/slow/a.jpg', body, 'image/jpeg', size);
    body.write(Buffer.alloc(size / 2, 1));
    const dir = path.join(root, 'u', 'slow');
    let tmp: string | undefined;
    for (let i = 0; i < 200 && tmp === undefined; i++) {
      tmp = (await readdir(dir).catch(() => [] as string[])).find((n) => n.endsWith('.tmp'));
      if (tmp === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    expect(tmp).toBeDefined();
    expect(isPutTempName(tmp!)).toBe(true);
    const old = new Date(Date.now() - 10 * HOUR);
    await utimes(path.join(dir, tmp!), old, old);
    expect(await storage.removeDebris!(new Date(Date.now() - HOUR))).toEqual([]);
    body.end(Buffer.alloc(size / 2, 1));
    await put;
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(['a.jpg', 'a.jpg.signet-meta.json']);
    expect(sideFileObjectName(names[1]!)).toBe('a.jpg');
  });

  it("lists an operator's report.tmp as an object (a put's temporary file stays hidden)", async () => {
    await file('in/report.tmp', 'the operator’s', 0);
    await file('in/a.png.12.1765000000000.tmp', 'partial', 0);
    expect((await storage.list('in/')).objects.map((o) => o.key)).toEqual(['in/report.tmp']);
  });
});

describe('isPutTempName', () => {
  it('accepts exactly `<object name>.<pid>.<ms>.tmp`', () => {
    for (const name of [
      'a.jpg.1.1765000000000.tmp',
      'a.4194304.1765000000000.tmp',
      'x.tmp.12.1765000000000.tmp',
      'a b.9.9999999999999.tmp',
    ]) {
      expect(isPutTempName(name), name).toBe(true);
    }
    for (const name of [
      'report.tmp',
      'x.tmp',
      '.tmp',
      '.1.2.tmp',
      '..1.2.tmp',
      '...1.2.tmp',
      'a.0.2.tmp',
      'a.1.02.tmp',
      'a.-1.2.tmp',
      'a.1.2.tmp.bak',
      'a.1..tmp',
      'a..2.tmp',
      'a.signet-meta.json.1.2.tmp',
      `a.${'9'.repeat(11)}.2.tmp`,
      `a.1.${'9'.repeat(17)}.tmp`,
      // Dotted dates and versions of an operator's own, not a put's pid and 13-digit time.
      'report.2024.12.tmp',
      'sales.1.0.tmp',
      'a.jpg.1.0.tmp',
      'a.12345678.1765000000000.tmp',
      'a.1.176500000000.tmp',
      'a.1.17650000000000.tmp',
    ]) {
      expect(isPutTempName(name), name).toBe(false);
    }
  });

  it('is linear on hostile names', () => {
    const started = performance.now();
    for (const name of [
      '.'.repeat(200_000),
      `${'1.'.repeat(100_000)}tmp`,
      `${'a'.repeat(200_000)}.1.2.tmp`,
    ]) {
      isPutTempName(name);
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
