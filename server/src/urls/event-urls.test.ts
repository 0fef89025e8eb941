import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../../test/support/logs.js';
import { FakeClock } from '../clock.js';
import { decodeEvents, encodeEvents, type SignedUrlEvent } from '../events/event-bus.js';
import { createMetrics } from '../metrics.js';
import { createCosStorage } from '../storage/cos.js';
import { derivedKeyOf, withDerivedVariants } from '../storage/derived-variants.js';
import { createLocalStorage } from '../storage/local.js';
import { createS3Storage } from '../storage/s3.js';
import type { Storage, UrlSignature } from '../storage/storage.js';
import { urlIdOf, type Variant, variantOf } from '../storage/variant.js';
import { eventUrlOf } from './event-urls.js';
import { MemoryUrlStore } from './memory-store.js';
import { RegionChoice } from './region-choice.js';
import { type ObjectPlacement, refreshAtOf, type UrlRequest } from './resolved-url.js';
import { encodeSignature } from './store.js';
import { createUrlPath } from './url-path.js';

// Signing only (CPU, no request is made): the real drivers. What a publisher sends of a signing
// (its url id, object key and signature) must give every other node the URL the publisher built.
const cos = (bucket: string) =>
  createCosStorage({
    secretId: 'AKIDEXAMPLE',
    secretKey: 'secret-key-of-the-test',
    bucket,
    region: 'ap-guangzhou',
    protocol: 'https:',
  });
const home = cos('photos-1250000000');
const other = cos('photos-eu-1250000000');
const regions = new Map<string, Storage>([
  ['ap-guangzhou', home],
  ['eu-frankfurt', other],
]);
const REFRESH_AHEAD = 900;
const urlOf = eventUrlOf({ storage: home, regions, refreshAheadSeconds: REFRESH_AHEAD });
const window = { start: 1_800_000_000, end: 1_800_003_660 };
const thumb = variantOf({ width: 320, height: 320, fit: 'cover', format: 'webp', quality: 75 });

/** A signing as the signer publishes it: the URL built by `storage`, and where it came from. */
function published(
  storage: Storage,
  imageId: string,
  key: string,
  variant?: Variant,
  region?: string,
): SignedUrlEvent {
  const [s] = storage.signMany([key], window, variant ? [variant] : undefined);
  const by = storage.signedBy;
  const sig: UrlSignature =
    region === undefined ? { ...window, sig: s!, by } : { ...window, sig: s!, by, region };
  const expiresAt = window.end * 1000;
  return {
    imageId: urlIdOf(imageId, variant),
    signedUrl: {
      url: storage.urlFor(key, sig, variant),
      expiresAt,
      refreshAt: refreshAtOf(expiresAt, REFRESH_AHEAD),
      cached: false,
    },
    objectKey: key,
    signature: encodeSignature(sig),
  };
}

/** What a listener is handed: the event without its origin. */
const delivered = (e: SignedUrlEvent): SignedUrlEvent => ({ imageId: e.imageId, signedUrl: e.signedUrl });

describe('URL events in the compact wire form', () => {
  const events = [
    published(home, 'img-1', 'u/alice/img-1.jpg'),
    published(home, 'img-2', 'u/alice/img 2 (ü).jpg', thumb),
    published(other, 'img-3', 'u/bob/img-3.png', undefined, 'eu-frankfurt'),
  ];

  it('carry key and signature, and every node builds the URL the publisher built', () => {
    const message = encodeEvents(events);
    expect(message.startsWith('{"v":2,')).toBe(true);
    for (const e of events) expect(message).not.toContain(e.signedUrl.url);
    expect(decodeEvents(message, urlOf)).toEqual(events.map(delivered));
  });

  it('are less than half the URL form (the cos URLs of a page)', () => {
    const page = Array.from({ length: 100 }, (_, i) =>
      published(home, `0190c0de-0000-7000-8000-${String(i).padStart(12, '0')}`, `u/alice/${i}.jpg`),
    );
    const urlForm = encodeEvents(page.map(delivered));
    expect(urlForm.startsWith('[[')).toBe(true);
    expect(encodeEvents(page).length).toBeLessThan(urlForm.length / 2);
  });

  it('build URLs only for the ids wanted', () => {
    const built: string[] = [];
    const counting = (id: string, key: string, signature: string) => {
      built.push(id);
      return urlOf(id, key, signature);
    };
    const got = decodeEvents(encodeEvents(events), counting, (id) => id === events[1]!.imageId);
    expect(got).toEqual([delivered(events[1]!)]);
    expect(built).toEqual([events[1]!.imageId]);
  });

  it('leave out what this node cannot build: an unknown region, a malformed record', () => {
    const unknown = published(other, 'img-4', 'u/bob/img-4.png', undefined, 'us-virginia');
    const message = encodeEvents([unknown, events[0]!]);
    expect(decodeEvents(message, urlOf)).toEqual([delivered(events[0]!)]);
    // One bad record costs only itself; a trailing partial record is ignored.
    const good = events[0]!;
    const bad = JSON.stringify({
      v: 2,
      e: [
        'img-5',
        'u/a.jpg',
        'not-a-signature',
        'img-6',
        7,
        encodeSignature({ ...window, sig: 'x' }),
        good.imageId,
        good.objectKey,
        good.signature,
        'img-7',
      ],
    });
    expect(decodeEvents(bad, urlOf)).toEqual([delivered(good)]);
    expect(decodeEvents(JSON.stringify({ v: 3, e: [] }), urlOf)).toEqual([]);
    expect(decodeEvents('null', urlOf)).toEqual([]);
  });

  it('leave out a signature made with other credentials (a node before or after a key rotation)', () => {
    // The same bucket signed with a new key pair: a node still on the old one would wrap the
    // new signature in a URL naming its old key id, which the store refuses.
    const rotated = createCosStorage({
      secretId: 'AKIDROTATED',
      secretKey: 'the-rotated-secret-key',
      bucket: 'photos-1250000000',
      region: 'ap-guangzhou',
      protocol: 'https:',
    });
    expect(rotated.signedBy).not.toBe(home.signedBy);
    const fromRotated = published(rotated, 'img-9', 'u/alice/img-9.jpg');
    const message = encodeEvents([fromRotated, events[0]!]);
    expect(decodeEvents(message, urlOf)).toEqual([delivered(events[0]!)]);
    const rotatedUrlOf = eventUrlOf({
      storage: rotated,
      regions: new Map(),
      refreshAheadSeconds: REFRESH_AHEAD,
    });
    expect(decodeEvents(message, rotatedUrlOf)).toEqual([delivered(fromRotated)]);
  });

  it('an event without its origin sends the batch in the URL form, which every version reads', () => {
    const mixed = [events[0]!, delivered(events[1]!)];
    const message = encodeEvents(mixed);
    expect(Array.isArray(JSON.parse(message))).toBe(true);
    expect(decodeEvents(message, () => undefined)).toEqual(mixed.map(delivered));
  });

  it('a node of an earlier version reads nothing of a compact message (it is not an array)', () => {
    expect(Array.isArray(JSON.parse(encodeEvents(events)))).toBe(false);
  });
});

describe('eventUrlOf on s3 with derived variants', () => {
  const storage = withDerivedVariants(
    createS3Storage({
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'secret',
      bucket: 'photos',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
    }),
  );
  const s3UrlOf = eventUrlOf({ storage, regions: new Map(), refreshAheadSeconds: REFRESH_AHEAD });

  it('names the signer of the store it wraps (a rotation of its keys is a miss there too)', () => {
    expect(storage.signedBy).toMatch(/^[A-Za-z0-9_-]{8}$/);
    const rotated = withDerivedVariants(
      createS3Storage({
        accessKeyId: 'AKIDROTATED',
        secretAccessKey: 'secret',
        bucket: 'photos',
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:9',
        forcePathStyle: true,
      }),
    );
    expect(rotated.signedBy).not.toBe(storage.signedBy);
  });

  it('builds the URL of the object the signature was made for: the derived one, or the original', () => {
    const original = 'u/alice/0b7c5a4e.jpg';
    // The domain names the derived object once it is made, the original (processed) before.
    for (const key of [derivedKeyOf(original, thumb), original]) {
      const e = published(storage, 'img-8', key, thumb);
      expect(e.signature).toMatch(/\.[do]:/);
      expect(decodeEvents(encodeEvents([e]), s3UrlOf)).toEqual([delivered(e)]);
    }
  });
});

describe('what the signer publishes, as another node of the region builds it', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-event-urls-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is the URL each page was given: originals in either bucket, and a variant', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    // Region b's nodes: two real local buckets told apart by their public URL.
    const bucket = (name: string) =>
      createLocalStorage({
        root: path.join(dir, name),
        publicUrl: `http://${name}.test`,
        secret: 'event-urls-secret-event-urls-secret',
      });
    const storages = new Map([
      ['a', bucket('a')],
      ['b', bucket('b')],
    ]);
    const own = storages.get('b')!;
    const published: SignedUrlEvent[] = [];
    const { urls } = createUrlPath({
      storage: own,
      regions: {
        storages,
        choice: new RegionChoice({
          self: 'b',
          buckets: [
            { name: 'a', bucket: 'ba', host: undefined },
            { name: 'b', bucket: 'bb', host: undefined },
          ],
          replicationDelaySeconds: undefined,
        }),
      },
      store: new MemoryUrlStore(clock, 1000),
      events: {
        publish: async (events) => {
          published.push(...events);
        },
      },
      clock,
      metrics: createMetrics(),
      logger: captureLogger('info').logger,
      timing: { urlTtlSeconds: 3600, refreshAheadSeconds: REFRESH_AHEAD, defaultMinTtlSeconds: 300 },
    });
    const placed = (homeRegion: string | null): ObjectPlacement => ({
      homeRegion,
      replicatedRegions: [],
      createdAt: new Date(clock.now()),
    });
    const requests: UrlRequest[] = [
      { id: 'homed-in-a', key: 'u/x/homed-in-a.png', minTtl: 60, placement: placed('a') },
      { id: 'homed-here', key: 'u/x/homed-here.png', minTtl: 60, placement: placed('b') },
      { id: 'no-home', key: 'u/x/no-home.png', minTtl: 60 },
      {
        id: urlIdOf('no-home', thumb),
        key: 'u/x/no-home.png',
        variant: thumb,
        minTtl: 60,
        preset: 'thumb',
      },
    ];
    const given = await urls.resolveMany(requests);
    // The event leaves after the answer (signer.ts).
    while (published.length < requests.length) await new Promise((r) => setImmediate(r));

    expect(new URL(given[0]!.url).host).toBe('a.test');
    expect(new URL(given[1]!.url).host).toBe('b.test');
    const heard = decodeEvents(
      encodeEvents(published),
      eventUrlOf({ storage: own, regions: storages, refreshAheadSeconds: REFRESH_AHEAD }),
    );
    const byId = new Map(heard.map((e) => [e.imageId, e.signedUrl]));
    expect(byId.size).toBe(requests.length);
    requests.forEach((r, i) => {
      expect(byId.get(r.id)).toEqual({ ...given[i]!, cached: false });
    });
  });
});
