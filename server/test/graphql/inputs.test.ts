import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { gqlAuthorized } from '../support/raw-graphql.js';
import { seed } from '../support/seed.js';

const codes = (r: { errors?: { extensions?: { code?: string } }[] | undefined }) =>
  (r.errors ?? []).map((e) => e.extensions?.code);

const IMAGE = 'query($id: ID!) { image(id: $id) { id key signedUrl { url } } }';
const BY_IDS = 'query($ids: [ID!]!) { imagesByIds(ids: $ids) { id } }';
const PAGE =
  'query($first: Int, $after: String) { images(first: $first, after: $after) { totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }';
const MIN_TTL =
  'query($minTtl: Int) { images(first: 1) { edges { node { signedUrl(minTtl: $minTtl) { url } } } } }';

// PostgreSQL + the shared Redis (each harness has its own key prefix) + the local driver.
describe('GraphQL inputs: ownership and bad input', () => {
  let h: Harness;
  let alice: string[];
  let bob: string[];

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: testRedisUrl(), env: { URL_TTL_SECONDS: '3600' } });
    alice = await seed(h, 'alice', 12);
    bob = await seed(h, 'bob', 3);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('ownership: another owner’s image is exactly a missing one', () => {
    it('image(id) of bob’s image answers byte for byte like a random missing id', async () => {
      const token = await h.token('alice');
      const theirs = await gqlAuthorized(h, IMAGE, { id: bob[0] }, `Bearer ${token}`);
      const missing = await gqlAuthorized(h, IMAGE, { id: randomUUID() }, `Bearer ${token}`);
      expect(theirs.body).toEqual({ data: { image: null } });
      expect(theirs.status).toBe(missing.status);
      expect(theirs.text).toBe(missing.text);
      // and bob does see it
      const own = await h.gql<{ image: { id: string } | null }>(
        IMAGE,
        { id: bob[0] },
        { token: await h.token('bob') },
      );
      expect(own.data!.image?.id).toBe(bob[0]);
    });

    it('imagesByIds keeps the order and has null in bob’s positions', async () => {
      const ids = [alice[0], bob[0], alice[5], randomUUID(), bob[2], alice[0]];
      const res = await h.gql<{ imagesByIds: ({ id: string } | null)[] }>(BY_IDS, { ids });
      expect(res.errors).toBeUndefined();
      expect(res.data!.imagesByIds.map((n) => n?.id ?? null)).toEqual([
        alice[0],
        null,
        alice[5],
        null,
        null,
        alice[0],
      ]);
    });

    it('images never lists bob’s, on any page', async () => {
      const seen: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 10; i++) {
        const res: Awaited<ReturnType<typeof h.gql<PageResult>>> = await h.gql<PageResult>(PAGE, {
          first: 5,
          after,
        });
        expect(res.errors).toBeUndefined();
        expect(res.data!.images.totalCount).toBe(alice.length);
        seen.push(...res.data!.images.edges.map((e) => e.node.id));
        if (!res.data!.images.pageInfo.hasNextPage) break;
        after = res.data!.images.pageInfo.endCursor;
      }
      expect(seen).toEqual([...alice].reverse());
      for (const id of bob) expect(seen).not.toContain(id);
    });

    it('bob’s cursor does not reveal alice’s images to him', async () => {
      const page = await h.gql<PageResult>(PAGE, { first: 3 });
      const cursor = page.data!.images.pageInfo.endCursor;
      const res = await h.gql<PageResult>(
        PAGE,
        { first: 100, after: cursor },
        { token: await h.token('bob') },
      );
      expect(res.errors).toBeUndefined();
      for (const e of res.data!.images.edges) expect(bob).toContain(e.node.id);
    });
  });

  describe('bad input is BAD_USER_INPUT with a message that says what is allowed', () => {
    it.each([0, 101, -1, 100_000, 2 ** 31 - 1])('first: %i', async (first) => {
      const res = await h.gql(PAGE, { first });
      expect(res.data).toBeNull();
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0]!.message).toMatch(/\b1\b.*\b100\b/);
    });

    it('first: 1 and 100 are fine', async () => {
      for (const first of [1, 100]) {
        const res = await h.gql<PageResult>(PAGE, { first });
        expect(res.errors).toBeUndefined();
        expect(res.data!.images.edges).toHaveLength(Math.min(first, alice.length));
      }
    });

    it('501 ids is too many; 500 is fine', async () => {
      const many = (n: number) => Array.from({ length: n }, () => randomUUID());
      const over = await h.gql(BY_IDS, { ids: many(501) });
      expect(codes(over)).toEqual(['BAD_USER_INPUT']);
      expect(over.errors![0]!.message).toMatch(/500/);
      const ok = await h.gql<{ imagesByIds: unknown[] }>(BY_IDS, { ids: many(500) });
      expect(ok.errors).toBeUndefined();
      expect(ok.data!.imagesByIds).toEqual(Array(500).fill(null));
    });

    it('a malformed id, alone or in a list', async () => {
      for (const id of ['nope', '', `${alice[0]}x`, "1' or '1'='1", 'x'.repeat(10_000)]) {
        const one = await h.gql(IMAGE, { id });
        expect(codes(one), id.slice(0, 20)).toEqual(['BAD_USER_INPUT']);
        expect(one.errors![0]!.message).toMatch(/UUID/);
      }
      const inline = await h.gql('{ image(id: "nope") { id } }');
      expect(codes(inline)).toEqual(['BAD_USER_INPUT']);
      const list = await h.gql(BY_IDS, { ids: [alice[0], 'nope'] });
      expect(codes(list)).toEqual(['BAD_USER_INPUT']);
    });

    it('a malformed after cursor', async () => {
      const b64 = (s: string) => Buffer.from(s).toString('base64url');
      for (const after of [
        'garbage',
        '',
        b64('123:not-a-uuid'),
        b64(`abc:${alice[0]}`),
        b64(`99999999999999999999:${alice[0]}`),
        'x'.repeat(5000),
        '%%%',
      ]) {
        const res = await h.gql(PAGE, { first: 5, after });
        expect(codes(res), after.slice(0, 20)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors![0]!.message).toMatch(/cursor/);
      }
    });

    it('minTtl below 0 or at/above URL_TTL_SECONDS names the allowed range', async () => {
      for (const minTtl of [-1, 3600, 10_000_000]) {
        const res = await h.gql(MIN_TTL, { minTtl });
        expect(codes(res), String(minTtl)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors![0]!.message).toMatch(/0 and 3599/);
      }
      for (const minTtl of [0, 3599]) {
        const res = await h.gql(MIN_TTL, { minTtl });
        expect(res.errors, String(minTtl)).toBeUndefined();
      }
    });

    it('wrong-typed variables and broken documents are never INTERNAL_SERVER_ERROR', async () => {
      const cases: [string, Record<string, unknown>, string][] = [
        [PAGE, { first: 'x' }, 'BAD_USER_INPUT'],
        [PAGE, { first: 1.5 }, 'BAD_USER_INPUT'],
        [PAGE, { first: 2 ** 40 }, 'BAD_USER_INPUT'],
        [PAGE, { after: 42 }, 'BAD_USER_INPUT'],
        [BY_IDS, { ids: null }, 'BAD_USER_INPUT'],
        [BY_IDS, { ids: [{ a: 1 }] }, 'BAD_USER_INPUT'],
        [IMAGE, {}, 'BAD_USER_INPUT'],
        [MIN_TTL, { minTtl: 'soon' }, 'BAD_USER_INPUT'],
        ['{ images(first: "x") { totalCount } }', {}, 'GRAPHQL_VALIDATION_FAILED'],
        ['{ images { nope } }', {}, 'GRAPHQL_VALIDATION_FAILED'],
        ['{ images(first: ', {}, 'GRAPHQL_PARSE_FAILED'],
      ];
      const token = await h.token('alice');
      for (const [query, variables, code] of cases) {
        const res = await gqlAuthorized(h, query, variables, `Bearer ${token}`);
        const label = `${query.slice(0, 30)} ${JSON.stringify(variables)}`;
        expect(res.status, label).toBeLessThan(500);
        expect(res.codes, label).toEqual([code]);
      }
    });
  });
});

interface PageResult {
  images: {
    totalCount: number;
    edges: { node: { id: string } }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}
