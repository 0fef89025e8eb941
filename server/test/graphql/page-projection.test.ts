import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImagesRepo } from '../../src/db/images-repo.js';
import { seedImages } from '../../src/seed.js';
import { type Harness, startHarness } from '../support/harness.js';

// A page selects the columns its fields read (schema/page-projection.ts). What is checked here,
// on PostgreSQL: the statement's columns follow the query, and for every field of the Image type
// (with each kind of argument) a page's answer is the same as the one from full rows
// (`imagesByIds` always reads every column).

/** Every field of the Image type, with the arguments that change what it reads. */
const SELECTIONS = {
  id: 'id',
  key: 'key',
  contentType: 'contentType',
  byteSize: 'byteSize',
  width: 'width',
  height: 'height',
  createdAt: 'createdAt',
  visibility: 'visibility',
  placeholder: 'placeholder',
  signedUrl: 'signedUrl { url expiresAt refreshAt }',
  'signedUrl(preset)': 'signedUrl(preset: "thumb") { url expiresAt }',
  'signedUrl(transform)': 'signedUrl(transform: { width: 200, format: WEBP }) { url expiresAt }',
  srcset: 'srcset(preset: "thumb")',
  urlStatus: 'urlStatus { accessCount refreshCount }',
  proxyUrl: 'proxyUrl',
  'proxyUrl(preset)': 'proxyUrl(mode: STREAM, preset: "thumb")',
  __typename: '__typename',
};

interface PageNodes {
  images: { edges: { cursor: string; node: Record<string, unknown> }[]; totalCount?: number };
}

describe('a page reads the columns its fields read (PostgreSQL)', () => {
  let h: Harness;
  const sql: string[] = [];
  let ids: string[];

  beforeAll(async () => {
    h = await startHarness({ env: { IMAGE_TRANSFORMS: 'any' }, onQuery: (s) => sql.push(s) });
    ids = await seedImages({
      storage: h.storage,
      images: h.container.imagesRepo,
      clock: { now: () => Date.now() },
      ownerId: 'alice',
      count: 6,
      width: 900,
      height: 600,
    });
    // Values that differ from the defaults, so that a column left out would show.
    const repo = h.container.imagesRepo;
    await repo.setPlaceholder(ids[1]!, 'k/cFBYBn+HiIiYiIeHiIiIiIeHiIiIiI');
    await repo.setVisibility(ids[2]!, 'public');
    // Recorded as animated: its variants are its original's URL, read from the row on a page too.
    expect(await createImagesRepo(h.db).recordAnimation(ids[3]!, true)).toBe(true);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The page statements `run` sent: their select lists. */
  async function pageColumns(run: () => Promise<unknown>): Promise<string[][]> {
    sql.length = 0;
    await run();
    return sql
      .filter((s) => s.includes('from "images" where "owner_id" = $1'))
      .map((s) =>
        s
          .slice('select '.length, s.indexOf(' from "images"'))
          .split(', ')
          .filter((c) => !c.startsWith('(select count'))
          .map((c) => c.replaceAll('"', '')),
      );
  }

  it('the page of id and signedUrl reads five columns; a preset adds what variants read', async () => {
    const plain = await pageColumns(() =>
      h.gql('{ images(first: 3) { edges { node { id signedUrl { url } } } } }'),
    );
    expect(plain).toEqual([['id', 'object_key', 'home_region', 'replicated_regions', 'created_at']]);
    const withPreset = await pageColumns(() =>
      h.gql('{ images(first: 3) { edges { node { id thumb: signedUrl(preset: "thumb") { url } } } } }'),
    );
    expect(new Set(withPreset[0])).toEqual(
      new Set([
        'id',
        'object_key',
        'content_type',
        'width',
        'height',
        'animated',
        'home_region',
        'replicated_regions',
        'variants_ready',
        'created_at',
      ]),
    );
    // Only the cursor's columns when nothing of the images is asked.
    const cursors = await pageColumns(() => h.gql('{ images(first: 3) { edges { cursor } totalCount } }'));
    expect(cursors).toEqual([['id', 'created_at']]);
  });

  it('fields reached through fragments and aliases count; so do fields of both `edges`', async () => {
    const query = /* GraphQL */ `
      query {
        images(first: 3) {
          ...Connection
          edges { node { ... on Image { w: width } } }
        }
      }
      fragment Connection on ImageConnection { edges { node { ...Card } } }
      fragment Card on Image { id placeholder }
    `;
    const [columns] = await pageColumns(() => h.gql(query));
    expect(new Set(columns)).toEqual(new Set(['id', 'placeholder', 'width', 'created_at']));
    const res = await h.gql<PageNodes>(query);
    expect(res.errors).toBeUndefined();
    expect(res.data!.images.edges.map((e) => e.node)).toEqual(
      [...ids]
        .reverse()
        .slice(0, 3)
        .map((id) => ({
          id,
          placeholder: id === ids[1] ? 'k/cFBYBn+HiIiYiIeHiIiIiIeHiIiIiI' : null,
          w: 900,
        })),
    );
  });

  it('one document, two operations sharing a fragment: each reads what it asks for', async () => {
    const doc = /* GraphQL */ `
      query A { ...F }
      query B { ...F images(first: 6) { edges { node { byteSize thumb: signedUrl(preset: "thumb") { url } } } } }
      fragment F on Query { images(first: 6) { edges { node { id } } } }
    `;
    const token = await h.token('alice');
    const run = async (operationName: string) => {
      const res = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: doc, operationName }),
      });
      return (await res.json()) as { data?: PageNodes; errors?: unknown };
    };
    // A first, so that an answer kept for the fragment's field node would be A's.
    expect((await run('A')).errors).toBeUndefined();
    const b = await run('B');
    expect(b.errors).toBeUndefined();
    const nodes = b.data!.images.edges.map((e) => e.node);
    const full = await h.gql<{ imagesByIds: Record<string, unknown>[] }>(
      'query ($ids: [ID!]!) { imagesByIds(ids: $ids) { id byteSize thumb: signedUrl(preset: "thumb") { url } } }',
      { ids: nodes.map((n) => n.id) },
    );
    expect(nodes).toEqual(full.data!.imagesByIds);
  });

  it("an animated row on a page: its preset, transform and srcset are the original's URL, as from a full row", async () => {
    const query = /* GraphQL */ `
      query {
        images(first: 6) {
          edges {
            node {
              id
              original: signedUrl { url }
              thumb: signedUrl(preset: "thumb") { url }
              sized: signedUrl(transform: { width: 200, format: WEBP }) { url }
              srcset(preset: "thumb")
            }
          }
        }
      }
    `;
    const page = await h.gql<{
      images: {
        edges: {
          node: {
            id: string;
            original: { url: string };
            thumb: { url: string };
            sized: { url: string };
            srcset: string;
          };
        }[];
      };
    }>(query);
    expect(page.errors).toBeUndefined();
    const nodes = new Map(page.data!.images.edges.map((e) => [e.node.id, e.node]));
    const animated = nodes.get(ids[3]!)!;
    expect(animated.thumb.url).toBe(animated.original.url);
    expect(animated.sized.url).toBe(animated.original.url);
    // One entry, the original at its own width: as a GIF's srcset.
    expect(animated.srcset).toBe(`${animated.original.url} 900w`);
    const still = nodes.get(ids[4]!)!;
    expect(still.thumb.url).not.toBe(still.original.url);
    expect(still.sized.url).not.toBe(still.original.url);
  });

  it('the selections above cover every field of the Image type', async () => {
    const res = await h.gql<{ __type: { fields: { name: string }[] } }>(
      '{ __type(name: "Image") { fields { name } } }',
    );
    const covered = new Set(Object.values(SELECTIONS).map((s) => /^\w+/.exec(s)![0]));
    expect(res.data!.__type.fields.map((f) => f.name).filter((n) => !covered.has(n))).toEqual([]);
  });

  it.each(Object.entries(SELECTIONS))('%s: a page answers as full rows do', async (_name, selection) => {
    const page = await h.gql<PageNodes>(`{ images(first: 6) { edges { node { id ${selection} } } } }`);
    expect(page.errors).toBeUndefined();
    const nodes = page.data!.images.edges.map((e) => e.node);
    expect(nodes).toHaveLength(6);
    const full = await h.gql<{ imagesByIds: Record<string, unknown>[] }>(
      `query ($ids: [ID!]!) { imagesByIds(ids: $ids) { id ${selection} } }`,
      { ids: nodes.map((n) => n.id) },
    );
    expect(full.errors).toBeUndefined();
    expect(nodes).toEqual(full.data!.imagesByIds);
  });

  it('pages after a cursor, and the total, are those of full rows', async () => {
    const lean = /* GraphQL */ `
      query ($after: String) { images(first: 2, after: $after) { edges { cursor node { id } } totalCount } }
    `;
    const full = /* GraphQL */ `
      query ($after: String) {
        images(first: 2, after: $after) { edges { cursor node { id key byteSize proxyUrl } } totalCount }
      }
    `;
    let after: string | null = null;
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const a: { data: PageNodes | null } = await h.gql<PageNodes>(lean, { after });
      const b = await h.gql<PageNodes>(full, { after });
      expect(a.data!.images.edges.map((e) => e.cursor)).toEqual(b.data!.images.edges.map((e) => e.cursor));
      expect(a.data!.images.totalCount).toBe(6);
      expect(b.data!.images.totalCount).toBe(6);
      seen.push(...a.data!.images.edges.map((e) => e.node.id as string));
      after = a.data!.images.edges.at(-1)!.cursor;
    }
    expect(seen).toEqual([...ids].reverse());
  });
});
