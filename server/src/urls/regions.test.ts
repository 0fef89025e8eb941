import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../../test/support/logs.js';
import { FakeClock } from '../clock.js';
import { MemoryEventBus } from '../events/memory-bus.js';
import { createMetrics } from '../metrics.js';
import { createLocalStorage } from '../storage/local.js';
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
    const { urls } = createUrlPath({
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
    });
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
