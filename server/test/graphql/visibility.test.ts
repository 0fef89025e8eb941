import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageVisibility } from '../../src/db/types.js';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { makePng } from '../fixtures/images.js';
import { CountingProxy } from '../support/counting-proxy.js';
import { testRedisUrl } from '../support/env.js';
import { type GqlResult, type Harness, startHarness } from '../support/harness.js';
import { waitFor } from '../support/proxy.js';
import { seed } from '../support/seed.js';
import { type SseSubscription, subscribeSse } from '../support/sse.js';
import { clearOfStepTurns } from '../support/step-turns.js';
import { uploadFile } from '../support/upload.js';

// Who sees what (docs/architecture.md, "Who sees what"), every role × visibility × entry point.
// Two nodes of one deployment (one database, one bucket, one Redis): node A as shipped
// (PUBLIC_READ_ANONYMOUS unset), node B with PUBLIC_READ_ANONYMOUS=true. Visibility changes made
// on A must reach B's subscriptions and proxy memory through the event bus.

type Role = 'owner' | 'other' | 'admin' | 'service' | 'anonymous' | 'anonymous (PUBLIC_READ_ANONYMOUS)';
const ROLES: Role[] = [
  'owner',
  'other',
  'admin',
  'service',
  'anonymous',
  'anonymous (PUBLIC_READ_ANONYMOUS)',
];
const VISIBILITIES: ImageVisibility[] = ['private', 'public'];

/** What each role may read by id, and whether it is signed in at all. */
const reads = (role: Role, v: ImageVisibility): boolean =>
  role === 'owner' || role === 'admin' || role === 'service'
    ? true
    : role === 'other' || role === 'anonymous (PUBLIC_READ_ANONYMOUS)'
      ? v === 'public'
      : false;
const signedIn = (role: Role) => !role.startsWith('anonymous');
/** Delete and change visibility: the owner or an admin. */
const manages = (role: Role) => role === 'owner' || role === 'admin';

const IMAGE = /* GraphQL */ `
  query($id: ID!) {
    image(id: $id) { id visibility signedUrl { url } redirect: proxyUrl stream: proxyUrl(mode: STREAM) }
  }
`;
const BY_IDS = 'query($ids: [ID!]!) { imagesByIds(ids: $ids) { id visibility } }';
const SUB =
  'subscription($ids: [ID!]!) { signedUrlRefreshed(ids: $ids) { imageId signedUrl { url expiresAt } } }';
const SET = /* GraphQL */ `
  mutation($id: ID!, $v: ImageVisibility!) { setImageVisibility(id: $id, visibility: $v) { id visibility } }
`;
const DELETE = 'mutation($id: ID!) { deleteImage(id: $id) }';

interface ImageData {
  id: string;
  visibility: 'PRIVATE' | 'PUBLIC';
  signedUrl: { url: string };
  redirect: string;
  stream: string;
}
type SubData = {
  data?: { signedUrlRefreshed: { imageId: string } };
  errors?: { extensions?: { code?: string } }[];
};

const BASE = Date.UTC(2031, 0, 1);
const event = (imageId: string, n: number): SignedUrlEvent => ({
  imageId,
  signedUrl: {
    url: `https://bucket.test/${imageId}?n=${n}`,
    expiresAt: BASE + n,
    refreshAt: BASE + n,
    cached: false,
  },
});
const MISSING = '00000000-0000-4000-8000-000000000000';
const PNG = makePng(8, 8, [200, 40, 40], [40, 40, 200]);

describe('who sees what: role × visibility × entry point', () => {
  let a: Harness;
  let b: Harness;
  let wire: CountingProxy;
  const sqlA: string[] = [];
  const tokens = new Map<Role, string | null>();
  /** alice's images by visibility. */
  const img = {} as Record<ImageVisibility, string>;

  /** The node a role calls, and its bearer token (null: none). */
  const nodeOf = (role: Role) => (role === 'anonymous (PUBLIC_READ_ANONYMOUS)' ? b : a);
  const gql = <T>(role: Role, query: string, variables: Record<string, unknown>): Promise<GqlResult<T>> =>
    nodeOf(role).gql<T>(query, variables, { token: tokens.get(role) ?? null });
  const codeOf = (r: GqlResult<unknown>) => r.errors?.[0]?.extensions?.code;
  const bearer = (role: Role): Record<string, string> => {
    const t = tokens.get(role);
    return t ? { authorization: `Bearer ${t}` } : {};
  };

  /** A fresh image of alice's with this visibility (for the destructive cases). */
  async function freshImage(v: ImageVisibility): Promise<string> {
    const [id] = await seed(a, 'alice', 1);
    if (v === 'public') await a.container.imagesRepo.setVisibility(id!, 'public');
    return id!;
  }

  beforeAll(async () => {
    const redis = new URL(testRedisUrl());
    wire = await CountingProxy.start('redis', redis.hostname, Number(redis.port || 6379));
    a = await startHarness({
      driver: 'local',
      redis: `redis://127.0.0.1:${wire.port}`,
      onQuery: (s) => sqlA.push(s),
    });
    b = await startHarness({
      driver: 'local',
      redis: testRedisUrl(),
      nodeOf: a,
      env: { PUBLIC_READ_ANONYMOUS: 'true' },
    });
    expect(a.config.auth.publicReadAnonymous).toBe(false);
    expect(b.config.auth.publicReadAnonymous).toBe(true);
    tokens.set('owner', await a.token('alice'));
    tokens.set('other', await a.token('bob'));
    tokens.set('admin', await a.token('root', { role: 'admin' }));
    tokens.set('service', await a.token('gateway', { role: 'service' }));
    tokens.set('anonymous', null);
    tokens.set('anonymous (PUBLIC_READ_ANONYMOUS)', null);
    img.private = (await seed(a, 'alice', 1))[0]!;
    // The public one goes through the real upload, with the argument.
    const up = await uploadFile(a, PNG, {
      type: 'image/png',
      query: 'mutation($file: File!) { uploadImage(file: $file, visibility: PUBLIC) { id visibility } }',
    });
    expect(up.errors).toBeUndefined();
    const uploaded = up.data as unknown as { uploadImage: { id: string; visibility: string } };
    expect(uploaded.uploadImage.visibility).toBe('PUBLIC');
    img.public = uploaded.uploadImage.id;
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await wire?.close();
  });

  it('uploads are PRIVATE unless asked otherwise', async () => {
    const up = await uploadFile(a, PNG, {
      type: 'image/png',
      query: 'mutation($file: File!) { uploadImage(file: $file) { id visibility } }',
    });
    expect((up.data as unknown as { uploadImage: { visibility: string } }).uploadImage.visibility).toBe(
      'PRIVATE',
    );
  });

  describe.each(ROLES)('%s', (role) => {
    it.each(VISIBILITIES)('image(id), its signedUrl and proxyUrl links: %s', async (v) => {
      const r = await gql<{ image: ImageData | null }>(role, IMAGE, { id: img[v] });
      if (role === 'anonymous') {
        expect(codeOf(r)).toBe('UNAUTHENTICATED');
        return;
      }
      expect(r.errors).toBeUndefined();
      if (!reads(role, v)) {
        // Exactly like a missing image.
        expect(r.data!.image).toBeNull();
        const missing = await gql<{ image: ImageData | null }>(role, IMAGE, { id: MISSING });
        expect(missing).toMatchObject({ status: r.status, data: { image: null }, errors: undefined });
        return;
      }
      const image = r.data!.image!;
      expect(image).toMatchObject({ id: img[v], visibility: v.toUpperCase() });
      // The signed URL and both proxy links really fetch the bytes, with no credential of their own.
      const bytes = await fetch(image.signedUrl.url);
      expect(bytes.status).toBe(200);
      expect(bytes.headers.get('content-type')).toBe('image/png');
      const redirect = await fetch(image.redirect, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      expect((await fetch(redirect.headers.get('location')!)).status).toBe(200);
      const stream = await fetch(image.stream);
      expect(stream.status).toBe(200);
      expect(
        Buffer.from(await stream.arrayBuffer())
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
    });

    it('imagesByIds: null where not visible, like a missing id', async () => {
      const r = await gql<{ imagesByIds: ({ id: string } | null)[] }>(role, BY_IDS, {
        ids: [img.private, MISSING, img.public],
      });
      if (role === 'anonymous') {
        expect(codeOf(r)).toBe('UNAUTHENTICATED');
        return;
      }
      expect(r.errors).toBeUndefined();
      expect(r.data!.imagesByIds.map((x) => x?.id ?? null)).toEqual([
        reads(role, 'private') ? img.private : null,
        null,
        reads(role, 'public') ? img.public : null,
      ]);
    });

    it.each(VISIBILITIES)('/proxy/:id with the role’s bearer token (or none): %s', async (v) => {
      const node = nodeOf(role);
      for (const mode of ['', '?mode=stream']) {
        const res = await fetch(`${node.url}/proxy/${img[v]}${mode}`, {
          headers: bearer(role),
          redirect: 'manual',
        });
        const expected = reads(role, v) ? (mode ? 200 : 302) : role === 'anonymous' ? 401 : 404;
        expect(res.status, `${role} ${v} ${mode || 'redirect'}`).toBe(expected);
        await res.arrayBuffer();
        if (expected === 404) {
          // Exactly what a missing image answers.
          const missing = await fetch(`${node.url}/proxy/${MISSING}${mode}`, { headers: bearer(role) });
          expect(missing.status).toBe(404);
          await missing.arrayBuffer();
        }
      }
    });

    it('signedUrlRefreshed delivers only what the role may see', async () => {
      const node = nodeOf(role);
      if (!signedIn(role)) {
        const res = await fetch(`${node.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query: SUB, variables: { ids: [img.private, img.public] } }),
        });
        // Subscriptions need a signed-in viewer, even where anonymous reads are on.
        expect(await res.text()).toContain('UNAUTHENTICATED');
        return;
      }
      const before = node.container.events.listenerCount();
      const s = subscribeSse<SubData>(node.url, SUB, { ids: [img.private, img.public] }, tokens.get(role)!);
      try {
        await s.opened;
        await waitFor(() => node.container.events.listenerCount() === before + 1);
        const n = Date.now();
        // One batch, private first: by the time the public one arrives, the private one would have.
        await a.container.events.publish([event(img.private, n), event(img.public, n)]);
        await s.waitFor((es) => es.some((e) => e.data.data?.signedUrlRefreshed.imageId === img.public));
        const got = s.events.map((e) => e.data.data!.signedUrlRefreshed.imageId);
        expect(got.includes(img.private)).toBe(reads(role, 'private'));
      } finally {
        s.close();
        await waitFor(() => node.container.events.listenerCount() === before);
      }
    });

    it.each(VISIBILITIES)('deleteImage: %s', async (v) => {
      const id = await freshImage(v);
      const r = await gql<{ deleteImage: boolean }>(role, DELETE, { id });
      if (!signedIn(role)) expect(codeOf(r)).toBe('UNAUTHENTICATED');
      else if (manages(role)) expect(r.data).toEqual({ deleteImage: true });
      else if (reads(role, v))
        expect(codeOf(r)).toBe('FORBIDDEN'); // it sees it: nothing leaks
      else expect(r).toMatchObject({ data: { deleteImage: false }, errors: undefined });
      const [row] = await a.container.imagesRepo.findLive([id]);
      expect(row !== undefined).toBe(!(signedIn(role) && manages(role)));
    });

    it.each(VISIBILITIES)('setImageVisibility: %s', async (v) => {
      const id = await freshImage(v);
      const to = v === 'private' ? 'PUBLIC' : 'PRIVATE';
      const r = await gql<{ setImageVisibility: { id: string; visibility: string } | null }>(role, SET, {
        id,
        v: to,
      });
      if (!signedIn(role)) expect(codeOf(r)).toBe('UNAUTHENTICATED');
      else if (manages(role)) expect(r.data).toEqual({ setImageVisibility: { id, visibility: to } });
      else if (reads(role, v)) expect(codeOf(r)).toBe('FORBIDDEN');
      else expect(r).toMatchObject({ data: { setImageVisibility: null }, errors: undefined });
      const [row] = await a.container.imagesRepo.findLive([id]);
      expect(row!.visibility).toBe(signedIn(role) && manages(role) ? to.toLowerCase() : v);
    });
  });

  it("an image's activity (urlStatus counts, last access) is shown to its managers and services only", async () => {
    const STATUS =
      'query($id: ID!) { image(id: $id) { urlStatus { cached accessCount refreshCount lastAccessAt } } }';
    type Status = { cached: boolean; accessCount: number; refreshCount: number; lastAccessAt: string | null };
    const statusOf = async (role: Role) => {
      const r = await gql<{ image: { urlStatus: Status } | null }>(role, STATUS, { id: img.public });
      expect(r.errors, role).toBeUndefined();
      return r.data!.image!.urlStatus;
    };
    // Looked at by its owner; the access counts land with the node's flush (once a second when
    // its background work runs, which this harness leaves to the test).
    expect((await gql('owner', IMAGE, { id: img.public })).errors).toBeUndefined();
    await a.container.access.flush();
    const owners = await statusOf('owner');
    expect(owners).toMatchObject({ cached: true, lastAccessAt: expect.any(String) });
    expect(owners.accessCount).toBeGreaterThan(0);
    for (const role of ['admin', 'service'] as const) {
      expect(await statusOf(role), role).toMatchObject({ cached: true, lastAccessAt: expect.any(String) });
      expect((await statusOf(role)).accessCount, role).toBeGreaterThan(0);
    }
    for (const role of ['other', 'anonymous (PUBLIC_READ_ANONYMOUS)'] as const) {
      expect(await statusOf(role), role).toEqual({
        cached: true,
        accessCount: 0,
        refreshCount: 0,
        lastAccessAt: null,
      });
    }
  });

  it('a viewer who loses access stops receiving URLs, on another node, and its links stop working', async () => {
    const id = await freshImage('public');
    const bobs = await gql<{ image: ImageData | null }>('other', IMAGE, { id });
    const alices = await gql<{ image: ImageData | null }>('owner', IMAGE, { id });
    expect(bobs.data!.image).not.toBeNull();
    // Both subscribe on node B; alice turns the image private on node A.
    const before = b.container.events.listenerCount();
    const subs: SseSubscription<SubData>[] = [
      subscribeSse<SubData>(b.url, SUB, { ids: [id] }, tokens.get('other')!),
      subscribeSse<SubData>(b.url, SUB, { ids: [id] }, tokens.get('owner')!),
    ];
    const [bob, alice] = subs as [SseSubscription<SubData>, SseSubscription<SubData>];
    try {
      await Promise.all(subs.map((s) => s.opened));
      await waitFor(() => b.container.events.listenerCount() === before + 2);
      await a.container.events.publish([event(id, 1)]);
      await bob.waitFor((es) => es.length === 1);
      await alice.waitFor((es) => es.length === 1);
      // Bob's proxy link works while the image is public (node B remembers the row now).
      expect((await fetch(bobs.data!.image!.redirect, { redirect: 'manual' })).status).toBe(302);
      expect(
        (await fetch(`${b.url}/proxy/${id}`, { headers: bearer('other'), redirect: 'manual' })).status,
      ).toBe(302);

      const set = await gql<{ setImageVisibility: { visibility: string } }>('owner', SET, {
        id,
        v: 'PRIVATE',
      });
      expect(set.data!.setImageVisibility.visibility).toBe('PRIVATE');
      // The change reaches node B before the next events (one publisher connection, one
      // subscriber connection: Redis keeps their order), and bob's subscription lets go of the image.
      for (let n = 2; n <= 4; n++) await a.container.events.publish([event(id, n)]);
      await alice.waitFor((es) => es.length >= 2 && JSON.stringify(es.at(-1)).includes(`n=4`));
      expect(bob.events).toHaveLength(1);
      // Node B's proxy forgot the row at once (not after its few seconds of memory): bob's
      // bearer request and the link he was handed both answer like a missing image; alice's own
      // link (minted for the owner) keeps working.
      expect(
        (await fetch(`${b.url}/proxy/${id}`, { headers: bearer('other'), redirect: 'manual' })).status,
      ).toBe(404);
      expect((await fetch(bobs.data!.image!.redirect, { redirect: 'manual' })).status).toBe(404);
      expect((await fetch(alices.data!.image!.redirect, { redirect: 'manual' })).status).toBe(302);
      expect((await gql<{ image: unknown }>('other', IMAGE, { id })).data).toEqual({ image: null });
    } finally {
      for (const s of subs) s.close();
    }
  });

  it('a page of mixed visibility is one SQL statement and, warm, one Redis round trip', async () => {
    // 60 images: alice's private and public, carol's private and public; bob asks for them all.
    const ids: string[] = [];
    for (const [owner, v] of [
      ['alice', 'private'],
      ['alice', 'public'],
      ['carol', 'private'],
      ['carol', 'public'],
      ['bob', 'private'],
    ] as const) {
      const made = await seed(a, owner, 12);
      if (v === 'public') for (const id of made) await a.container.imagesRepo.setVisibility(id, 'public');
      ids.push(...made);
    }
    const PAGE = 'query($ids: [ID!]!) { imagesByIds(ids: $ids) { id signedUrl { url } } }';
    const ask = () => gql<{ imagesByIds: ({ id: string } | null)[] }>('other', PAGE, { ids });
    // Not across a step turn: the measured page would then rightly sign the turned images' next URLs.
    await clearOfStepTurns(a.container.config, ids);
    const warm = await ask();
    expect(warm.errors).toBeUndefined();
    await wire.settled(); // the cold page's write-back leaves after its answer
    sqlA.length = 0;
    wire.reset();
    const r = await ask();
    expect(r.errors).toBeUndefined();
    const seen = r.data!.imagesByIds.map((x) => x !== null);
    // bob sees the public ones and his own: 36 of 60, in order, nulls elsewhere.
    expect(seen).toEqual(ids.map((_, i) => (i >= 12 && i < 24) || i >= 36));
    expect(sqlA).toHaveLength(1);
    expect(sqlA[0]).toMatch(/visibility/);
    expect(wire.turns.map((t) => t.commands)).toEqual([{ mget: 1 }]);
  });
});
