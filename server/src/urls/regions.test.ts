import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answered } from '../../test/support/answered.js';
import { captureLogger } from '../../test/support/logs.js';
import { FakeClock } from '../clock.js';
import { MemoryEventBus } from '../events/memory-bus.js';
import { createMetrics } from '../metrics.js';
import { derivedKeyOf, withDerivedVariants } from '../storage/derived-variants.js';
import { createLocalStorage } from '../storage/local.js';
import { createS3Storage } from '../storage/s3.js';
import { urlIdOf, variantOf } from '../storage/variant.js';
import { MemoryUrlStore } from './memory-store.js';
import { RegionChoice } from './region-choice.js';
import type { ObjectPlacement, UrlRequest } from './resolved-url.js';
import { decodeSignature, encodeSignature } from './store.js';
import { createUrlPath } from './url-path.js';

const T0 = Date.UTC(2026, 0, 1);
const SECRET = 'unit-test-secret-unit-test-secret';

describe('several regions on the URL path', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-regions-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Region b's node: two real local buckets told apart by their public URL. */
  function node(delaySeconds?: number) {
    const clock = new FakeClock(T0);
    const bucket = (name: string) =>
      createLocalStorage({ root: path.join(dir, name), publicUrl: `http://${name}.test`, secret: SECRET });
    const a = bucket('a');
    const b = bucket('b');
    const choice = new RegionChoice({
      self: 'b',
      buckets: [
        { name: 'a', bucket: 'ba', host: undefined },
        { name: 'b', bucket: 'bb', host: undefined },
      ],
      replicationDelaySeconds: delaySeconds,
    });
    const urls = answered(
      createUrlPath({
        storage: b,
        regions: {
          storages: new Map([
            ['a', a],
            ['b', b],
          ]),
          choice,
        },
        store: new MemoryUrlStore(clock, 1000),
        events: new MemoryEventBus(),
        clock,
        metrics: createMetrics(),
        logger: captureLogger('info').logger,
        timing: { urlTtlSeconds: 3600, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
      }).urls,
    );
    return { clock, urls };
  }

  const placement = (p: Partial<ObjectPlacement>): ObjectPlacement => ({
    homeRegion: 'a',
    replicatedRegions: [],
    createdAt: new Date(T0),
    ...p,
  });
  const req = (id: string, p: ObjectPlacement): UrlRequest => ({
    id,
    key: `u/x/${id}.png`,
    minTtl: 60,
    placement: p,
  });
  const host = (url: string) => new URL(url).host;

  it("signs the home region's bucket until the row says this region's has the object, then its own", async () => {
    const { urls } = node();
    const pending = placement({});
    const [remote, own, legacy] = await urls.resolveMany([
      req('i1', pending),
      req('i2', placement({ homeRegion: 'b' })),
      req('i3', placement({ homeRegion: null })),
    ]);
    expect(host(remote!.url)).toBe('a.test');
    expect(host(own!.url)).toBe('b.test');
    expect(host(legacy!.url)).toBe('b.test');
    // Cached as the home region's URL: the next page is a hit with the same URL.
    const [again] = await urls.resolveMany([req('i1', pending)]);
    expect(again).toMatchObject({ url: remote!.url, cached: true });
    // The replication check recorded it: the cached URL is for the other bucket, so it is a miss.
    const [moved] = await urls.resolveMany([req('i1', placement({ replicatedRegions: ['b'] }))]);
    expect(host(moved!.url)).toBe('b.test');
    expect(moved!.cached).toBe(false);
    const [hit] = await urls.resolveMany([req('i1', placement({ replicatedRegions: ['b'] }))]);
    expect(hit).toMatchObject({ url: moved!.url, cached: true });
    // The proxy's recent-URL memo follows the same choice.
    expect(host((await urls.resolveRecent(req('i1', pending), 5000)).url)).toBe('a.test');
  });

  it('takes the object to be replicated REPLICATION_DELAY_SECONDS after its upload', async () => {
    const { urls, clock } = node(60);
    const p = placement({});
    expect(host((await urls.resolveMany([req('i1', p)]))[0]!.url)).toBe('a.test');
    clock.advance(60_000);
    const [after] = await urls.resolveMany([req('i1', p)]);
    expect(host(after!.url)).toBe('b.test');
    expect(after!.cached).toBe(false);
  });

  it('a region it does not know (removed from STORAGE_REGIONS) falls back to its own bucket', async () => {
    const { urls } = node();
    expect(host((await urls.resolveMany([req('i1', placement({ homeRegion: 'c' }))]))[0]!.url)).toBe(
      'b.test',
    );
  });

  it("keeps the signature's region through the cache encoding", () => {
    const own = { start: 10, end: 20, sig: 'a.b.c' };
    const remote = { ...own, region: 'ap-singapore' };
    expect(decodeSignature(encodeSignature(own))).toEqual(own);
    expect(decodeSignature(encodeSignature(remote))).toEqual(remote);
    expect(encodeSignature(remote).startsWith('~ap-singapore.')).toBe(true);
    expect(decodeSignature('~.a.b.c')).toBeNull();
  });
});

describe('several regions with variants as derived objects (s3)', () => {
  // Signing only (CPU, no request is made): the real s3 driver, one endpoint host per region's
  // bucket, under the derived-variants wrapper as the container builds every region's storage.
  const bucket = (name: string) =>
    withDerivedVariants(
      createS3Storage({
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'secret',
        bucket: `photos-${name}`,
        region: 'us-east-1',
        endpoint: `http://${name}.test:9`,
        forcePathStyle: true,
      }),
    );
  const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });
  const original = 'u/x/i1.png';
  const derived = derivedKeyOf(original, thumb);

  function node() {
    const clock = new FakeClock(T0);
    const a = bucket('a');
    const b = bucket('b');
    const store = new MemoryUrlStore(clock, 1000);
    const urls = answered(
      createUrlPath({
        storage: b,
        regions: {
          storages: new Map([
            ['a', a],
            ['b', b],
          ]),
          choice: new RegionChoice({
            self: 'b',
            buckets: [
              { name: 'a', bucket: 'photos-a', host: undefined },
              { name: 'b', bucket: 'photos-b', host: undefined },
            ],
            replicationDelaySeconds: undefined,
          }),
        },
        store,
        events: new MemoryEventBus(),
        clock,
        metrics: createMetrics(),
        logger: captureLogger('info').logger,
        timing: { urlTtlSeconds: 3600, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
      }).urls,
    );
    return { urls, store };
  }

  /** The id of region b's variant URL request: the object the row names, as objectKeyFor does. */
  const thumbReq = (p: ObjectPlacement, ready: boolean): UrlRequest => ({
    id: urlIdOf('i1', thumb),
    key: ready ? derived : original,
    minTtl: 60,
    variant: thumb,
    preset: 'thumb',
    placement: p,
  });
  const placement = (p: Partial<ObjectPlacement>): ObjectPlacement => ({
    homeRegion: 'a',
    replicatedRegions: [],
    createdAt: new Date(T0),
    ...p,
  });
  /** The bucket (host) and object (path) a URL names. */
  const where = (url: string) => {
    const u = new URL(url);
    return { host: u.hostname, path: decodeURIComponent(u.pathname) };
  };

  it("signs a ready derived object of another region's upload for its home bucket, even once the original is replicated here", async () => {
    const { urls, store } = node();
    const replicated = placement({ replicatedRegions: ['b'] });
    const [thumbUrl, orig] = await urls.resolveMany([
      thumbReq(replicated, true),
      { id: 'i1', key: original, minTtl: 60, placement: replicated },
    ]);
    expect(where(thumbUrl!.url)).toEqual({ host: 'a.test', path: `/photos-a/${derived}` });
    expect(where(orig!.url)).toEqual({ host: 'b.test', path: `/photos-b/${original}` });
    // Cached with both marks: the bucket's region and the object's `d:`.
    const [raw] = await store.read([urlIdOf('i1', thumb)]);
    expect(raw).toMatchObject({ region: 'a' });
    expect(raw!.sig.startsWith('d:')).toBe(true);
    // Its own uploads' and rows without a home: this region's bucket.
    const [own] = await urls.resolveMany([thumbReq(placement({ homeRegion: 'b' }), true)]);
    expect(where(own!.url)).toEqual({ host: 'b.test', path: `/photos-b/${derived}` });
  });

  it('a cached signature for the other bucket is re-signed; one for the other object builds that object in its bucket', async () => {
    const { urls } = node();
    // Replicated here, preset not made yet: the original in this region's bucket (`o:`, no region).
    const replicated = placement({ replicatedRegions: ['b'] });
    const [fallback] = await urls.resolveMany([thumbReq(replicated, false)]);
    expect(where(fallback!.url)).toEqual({ host: 'b.test', path: `/photos-b/${original}` });
    // Now made (in a's bucket only): the cached entry is for b's bucket, so a miss, signed for a.
    const [made] = await urls.resolveMany([thumbReq(replicated, true)]);
    expect(made!.cached).toBe(false);
    expect(where(made!.url)).toEqual({ host: 'a.test', path: `/photos-a/${derived}` });
    // A lagging row (not ready) reads the `~a.d:` entry: the bucket chosen for the original is
    // b's, so a miss again — never the derived object's URL in b's bucket.
    const [lagging] = await urls.resolveMany([thumbReq(replicated, false)]);
    expect(lagging!.cached).toBe(false);
    expect(where(lagging!.url)).toEqual({ host: 'b.test', path: `/photos-b/${original}` });

    // Not replicated and not made: the original in a's bucket (`~a.o:`). Made meanwhile: same
    // bucket, so a hit, and it still builds the original's URL there (a working URL) until the
    // step ends — never the derived key with a signature made for the original.
    const pending = placement({});
    const second: UrlRequest = { ...thumbReq(pending, false), id: urlIdOf('i2', thumb) };
    const [early] = await urls.resolveMany([second]);
    expect(where(early!.url)).toEqual({ host: 'a.test', path: `/photos-a/${original}` });
    const [late] = await urls.resolveMany([{ ...second, key: derived }]);
    expect(late).toMatchObject({ url: early!.url, cached: true });
  });

  it('the refresh sweep (only stale) signs each item for the bucket chosen now', async () => {
    const { urls } = node();
    const fresh = await urls.refreshMany([{ ...thumbReq(placement({}), true) }], { onlyStale: true });
    expect(where(fresh.get(urlIdOf('i1', thumb))!.url)).toEqual({
      host: 'a.test',
      path: `/photos-a/${derived}`,
    });
    const orig = await urls.refreshMany([{ id: 'i3', key: 'u/x/i3.png', placement: placement({}) }], {
      onlyStale: true,
    });
    expect(where(orig.get('i3')!.url).host).toBe('a.test');
  });

  it('keeps both marks through the cache encoding', () => {
    const s = { start: 10, end: 20, sig: 'd:00ff', region: 'a' };
    expect(encodeSignature(s)).toBe('~a.a.k.d:00ff');
    expect(decodeSignature(encodeSignature(s))).toEqual(s);
    const own = { start: 10, end: 20, sig: 'o:00ff' };
    expect(decodeSignature(encodeSignature(own))).toEqual(own);
  });
});
