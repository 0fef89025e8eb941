import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGatewayRuntime, type GatewayRuntime } from '@graphql-hive/gateway-runtime';
import type { Transport } from '@graphql-mesh/transport-common';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CountingProxy } from '../support/counting-proxy.js';
import { type Harness, startHarness } from '../support/harness.js';
import { OwnedRedis } from '../support/redis-server.js';
import { seed } from '../support/seed.js';
import { clearOfStepTurns } from '../support/step-turns.js';

// Signet as a federation subgraph (docs/federation.md), end to end: Signet's SDL read from a
// running gateway's `_service { sdl }`, composed with a tiny `products` subgraph by
// @theguild/federation-composition, and served by Hive Gateway in process. Signet runs on the cos
// driver against the fixture, PostgreSQL, and a Redis this file owns behind a counting proxy, so
// SQL statements and Redis round trips of the `_entities` call are counted where they happen.

const PRODUCTS = 20;
const IMAGES_PER_PRODUCT = 5;

/** The products subgraph: Image is an entity it only references (Signet resolves it). */
const PRODUCTS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  type Query { products: [Product!]! }
  type Product { id: ID! name: String! imageIds: [ID!]! images: [Image]! }
  type Image @key(fields: "id", resolvable: false) { id: ID! }
`;
/** What the products server needs to build that SDL (the gateway reads it from the supergraph). */
const FEDERATION_DIRECTIVES = /* GraphQL */ `
  directive @link(url: String!, import: [String]) repeatable on SCHEMA
  directive @key(fields: String!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE
`;

const QUERY = /* GraphQL */ `
  { products { id images { id signedUrl { url } } } }
`;

interface Result {
  status: number;
  data: { products: { id: string; images: ({ id: string; signedUrl: { url: string } } | null)[] }[] } | null;
  errors?: { message: string; path?: (string | number)[] }[];
}

/**
 * Hive Gateway's transport for `http` subgraphs. The gateway loads @graphql-mesh/transport-http
 * for it on demand, and that package is not installed here: this is the same thing in a few
 * lines, an HTTP executor on the gateway's own fetch (so its plugins, header propagation
 * included, see every subgraph request).
 */
const httpTransport: Transport = {
  getSubgraphExecutor: ({ transportEntry, fetch }) =>
    buildHTTPExecutor({ endpoint: transportEntry.location!, ...(fetch ? { fetch } : {}) }),
};

/** Which images of the products a viewer kind is shown: the table the assertions read. */
type ImageKind = "the user's own" | "another owner's private" | "another owner's public";
type Via = 'the user token, forwarded' | 'a service token';

/** One row per (how the gateway calls Signet × kind of image): resolved, or null. */
const SEEN: { via: Via; images: ImageKind; resolves: boolean }[] = [
  { via: 'the user token, forwarded', images: "the user's own", resolves: true },
  { via: 'the user token, forwarded', images: "another owner's private", resolves: false },
  { via: 'the user token, forwarded', images: "another owner's public", resolves: true },
  // role "service": a trusted backend that did its own authorization reads every image by id
  // (the role comes with the visibility rules: auth/viewer.ts, docs/federation.md).
  { via: 'a service token', images: "the user's own", resolves: true },
  { via: 'a service token', images: "another owner's private", resolves: true },
  { via: 'a service token', images: "another owner's public", resolves: true },
];

describe('Signet as a federation subgraph behind Hive Gateway', () => {
  let redis: OwnedRedis;
  let wire: CountingProxy;
  let h: Harness;
  let productsServer: Server;
  const sql: string[] = [];
  /** Every request Hive Gateway sends to a subgraph: its subgraph's URL and body. */
  const subgraphCalls: { url: string; body: string }[] = [];
  const gateways: GatewayRuntime[] = [];
  const kinds = {} as Record<ImageKind, string[]>;
  let products: { id: string; name: string; imageIds: string[] }[];
  let userToken: string;
  let serviceToken: string;
  let supergraph: string;

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    wire = await CountingProxy.start('redis', '127.0.0.1', redis.port);
    h = await startHarness({
      driver: 'cos',
      redis: `redis://127.0.0.1:${wire.port}`,
      env: { FEDERATION: 'true' },
      onQuery: (s) => sql.push(s),
    });
    kinds["the user's own"] = await seed(h, 'alice', 60);
    kinds["another owner's private"] = await seed(h, 'bob', 20);
    kinds["another owner's public"] = await seed(h, 'carol', 20);
    for (const id of kinds["another owner's public"])
      await h.container.imagesRepo.setVisibility(id, 'public');
    userToken = await h.token('alice');
    serviceToken = await h.token('catalog-gateway', { role: 'service' });

    // 20 products of 5 images each, the 100 images each once (37 is prime to 100), so every
    // product mixes kinds of images.
    const all = Object.values(kinds).flat();
    products = Array.from({ length: PRODUCTS }, (_, p) => ({
      id: `p${p}`,
      name: `Product ${p}`,
      imageIds: Array.from(
        { length: IMAGES_PER_PRODUCT },
        (_, i) => all[((p * IMAGES_PER_PRODUCT + i) * 37) % all.length]!,
      ),
    }));
    const yoga = createYoga({
      schema: createSchema({
        typeDefs: [FEDERATION_DIRECTIVES, PRODUCTS_SDL],
        resolvers: {
          Query: { products: () => products },
          // Stubs: the gateway fetches the rest of each Image from Signet's _entities.
          Product: {
            images: (p: { imageIds: string[] }) => p.imageIds.map((id) => ({ __typename: 'Image', id })),
          },
        },
      }),
      logging: false,
    });
    productsServer = createServer(yoga);
    await new Promise<void>((r) => productsServer.listen(0, '127.0.0.1', r));
    const productsUrl = `http://127.0.0.1:${(productsServer.address() as AddressInfo).port}/graphql`;

    // Signet's SDL as a composition tool would read it: from the running gateway.
    const sdl = await h.gql<{ _service: { sdl: string } }>('{ _service { sdl } }', {}, { token: userToken });
    expect(sdl.errors).toBeUndefined();
    const composed = composeServices([
      { name: 'signet', typeDefs: parse(sdl.data!._service.sdl), url: `${h.url}/graphql` },
      { name: 'products', typeDefs: parse(PRODUCTS_SDL), url: productsUrl },
    ]);
    expect(composed.errors, composed.errors?.map((e) => e.message).join('\n')).toBeUndefined();
    supergraph = composed.supergraphSdl!;
  });

  afterAll(async () => {
    for (const g of gateways) await g.dispose();
    await new Promise<void>((r) => (productsServer ? productsServer.close(() => r()) : r()));
    await h?.close();
    await wire?.close();
    await redis?.kill();
  });

  /**
   * A Hive Gateway over the supergraph. `forward`: the client's Authorization header goes to every
   * subgraph; otherwise Signet is called with the gateway's own service token.
   */
  function gateway(via: Via): GatewayRuntime {
    const g = createGatewayRuntime({
      supergraph,
      logging: false,
      maskedErrors: false,
      transports: { http: httpTransport },
      propagateHeaders: {
        fromClientToSubgraphs: ({ request, subgraphName }) => {
          if (via === 'a service token') {
            return subgraphName === 'signet' ? { authorization: `Bearer ${serviceToken}` } : {};
          }
          return { authorization: request.headers.get('authorization') };
        },
      },
      plugins: () => [
        {
          onFetch({ url, options }) {
            subgraphCalls.push({ url, body: String(options.body ?? '') });
          },
        },
      ],
    });
    gateways.push(g);
    return g;
  }

  async function run(g: GatewayRuntime): Promise<Result> {
    const res = await g.fetch('http://gateway/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${userToken}` },
      body: JSON.stringify({ query: QUERY }),
    });
    return { status: res.status, ...((await res.json()) as Omit<Result, 'status'>) };
  }

  /** One gateway query with what it cost Signet: SQL, `_entities` requests, Redis turns, batches. */
  async function measured(g: GatewayRuntime) {
    sql.length = 0;
    subgraphCalls.length = 0;
    wire.reset();
    const visible = vi.spyOn(h.container.images, 'visible');
    const resolveMany = vi.spyOn(h.container.urls, 'resolveMany');
    const res = await run(g);
    const cost = {
      statements: [...sql],
      entityCalls: subgraphCalls.filter((c) => c.url.startsWith(h.url) && c.body.includes('_entities')),
      signetCalls: subgraphCalls.filter((c) => c.url.startsWith(h.url)),
      turns: wire.turns.map((t) => t.commands),
      lookups: visible.mock.calls.map((c) => c[1].length),
      urlBatches: resolveMany.mock.calls.map((c) => c[0].length),
    };
    visible.mockRestore();
    resolveMany.mockRestore();
    return { res, ...cost };
  }

  const vias = [...new Set(SEEN.map((r) => r.via))];
  describe.each(vias)('Signet called with %s', (via) => {
    let res: Result;
    let byId: Map<string, { id: string; signedUrl: { url: string } } | null>;

    beforeAll(async () => {
      const g = gateway(via);
      // The first query signs what is missing; the tests below read its answer (the count warms
      // again right before it counts).
      const first = await run(g);
      expect(first.status).toBe(200);
      expect(first.data, JSON.stringify(first.errors)).not.toBeNull();
      res = first;
      byId = new Map();
      for (const [p, product] of first.data!.products.entries()) {
        for (const [i, image] of product.images.entries()) byId.set(products[p]!.imageIds[i]!, image);
      }
    });

    it('returns the 20 products with 5 images each, in the products subgraph order', () => {
      expect(res.data!.products.map((p) => p.id)).toEqual(products.map((p) => p.id));
      for (const [p, product] of res.data!.products.entries()) {
        expect(product.images).toHaveLength(IMAGES_PER_PRODUCT);
        product.images.forEach((image, i) => {
          if (image) expect(image.id).toBe(products[p]!.imageIds[i]);
        });
      }
    });

    it.each(SEEN.filter((r) => r.via === via))(
      '$images: resolves = $resolves',
      async ({ images, resolves }) => {
        const ids = kinds[images];
        const shown = ids.filter((id) => byId.has(id));
        expect(shown.length, `products show some of ${images} images`).toBeGreaterThan(0);
        for (const id of shown) {
          const image = byId.get(id);
          if (resolves) {
            expect(image, `image ${id}`).not.toBeNull();
            expect(image!.signedUrl.url).toMatch(/^http/);
          } else {
            expect(image, `image ${id}`).toBeNull();
          }
        }
        if (resolves) {
          // A few of the URLs, fetched from the COS fixture: they work.
          for (const id of shown.slice(0, 3)) {
            const got = await fetch(byId.get(id)!.signedUrl.url);
            expect(got.status, id).toBe(200);
            await got.arrayBuffer();
          }
        }
      },
    );

    it('Signet sees one _entities batch: one SQL statement and, warm, one Redis round trip (MGET)', async () => {
      // Warm again right before, clear of a step turn: a page asked across an image's turn rightly
      // signs its next URL (docs/architecture.md, "The window grid"), which is not what this counts.
      await clearOfStepTurns(
        h.container.config,
        products.flatMap((p) => p.imageIds),
      );
      expect((await run(gateway(via))).status).toBe(200);
      await wire.settled(); // the re-warm's write-back, if it signed anything, leaves after its answer
      const m = await measured(gateway(via));
      const resolved = m.res.data!.products.flatMap((p) => p.images).filter(Boolean);
      // An image the viewer may not see is null in _entities. The gateway keeps the stub of the
      // products subgraph, finds no signedUrl in it and nulls the image with one error naming
      // that slot (federation's null propagation, docs/federation.md): nothing else goes wrong.
      const hidden = products.flatMap((p, pi) =>
        p.imageIds.flatMap((_, i) =>
          m.res.data!.products[pi]!.images[i] ? [] : [`products.${pi}.images.${i}`],
        ),
      );
      expect((m.res.errors ?? []).map((e) => `${e.path?.slice(0, 4).join('.')}: ${e.message}`)).toEqual(
        hidden.map((slot) => `${slot}: Cannot return null for non-nullable field Image.signedUrl.`),
      );
      expect(resolved.length).toBe(
        SEEN.filter((r) => r.via === via && r.resolves).reduce((n, r) => n + count(r.images), 0),
      );
      // The gateway asked Signet once, with all 100 references in one _entities call.
      expect(m.signetCalls).toHaveLength(1);
      expect(m.entityCalls).toHaveLength(1);
      const sent = JSON.parse(m.entityCalls[0]!.body) as { variables: { representations: unknown[] } };
      expect(sent.variables.representations).toHaveLength(PRODUCTS * IMAGES_PER_PRODUCT);
      expect(m.lookups).toEqual([PRODUCTS * IMAGES_PER_PRODUCT]);
      expect(m.statements, m.statements.join('\n')).toHaveLength(1);
      // Every signedUrl of the response is one batch, and warm it is one MGET on the wire.
      expect(m.urlBatches).toEqual([resolved.length]);
      expect(m.turns).toEqual([{ mget: 1 }]);
    });
  });

  /** How many of the products' 100 image slots hold an image of this kind. */
  function count(kind: ImageKind): number {
    const ids = new Set(kinds[kind]);
    return products.flatMap((p) => p.imageIds).filter((id) => ids.has(id)).length;
  }

  const ENTITIES = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Image { id } } }';

  it.each([
    [
      'more than 2,000 references',
      () => Array.from({ length: 2001 }, () => ({ __typename: 'Image', id: kinds["the user's own"][0] })),
    ],
    ['a type Signet does not own', () => [{ __typename: 'Product', id: 'p1' }]],
    ['a representation without __typename', () => [{ id: kinds["the user's own"][0] }]],
  ])('_entities with %s is refused as input, with no SQL run', async (_name, representations) => {
    sql.length = 0;
    const res = await h.gql(ENTITIES, { r: representations() }, { token: userToken });
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(sql).toEqual([]);
  });

  it('an id that is no image id is null, as a missing image is: the other references of the call still resolve', async () => {
    const own = kinds["the user's own"];
    sql.length = 0;
    const res = await h.gql<{ _entities: ({ id: string } | null)[] }>(
      ENTITIES,
      {
        r: [
          { __typename: 'Image', id: own[0] },
          { __typename: 'Image', id: '1 OR 1=1' },
          { __typename: 'Image', id: 42 },
          { __typename: 'Image' },
          { __typename: 'Image', id: own[1]!.toUpperCase() },
        ],
      },
      { token: userToken },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!._entities).toEqual([{ id: own[0] }, null, null, null, { id: own[1] }]);
    expect(sql).toHaveLength(1);

    // Only malformed ones: no SQL at all.
    sql.length = 0;
    const none = await h.gql(
      ENTITIES,
      { r: [{ __typename: 'Image', id: 'legacy-17' }] },
      { token: userToken },
    );
    expect(none).toMatchObject({ data: { _entities: [null] } });
    expect(sql).toEqual([]);
  });

  it('a plan step of 600 references (more than imagesByIds takes) resolves in one statement', async () => {
    const own = kinds["the user's own"];
    sql.length = 0;
    const r = Array.from({ length: 600 }, (_, i) => ({ __typename: 'Image', id: own[i % own.length] }));
    const res = await h.gql<{ _entities: ({ id: string } | null)[] }>(ENTITIES, { r }, { token: userToken });
    expect(res.errors).toBeUndefined();
    expect(res.data!._entities.map((e) => e?.id)).toEqual(r.map((x) => x.id));
    expect(sql).toHaveLength(1);
  });

  it('_entities of no references is an empty list', async () => {
    const res = await h.gql(ENTITIES, { r: [] }, { token: userToken });
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ _entities: [] });
  });
});
