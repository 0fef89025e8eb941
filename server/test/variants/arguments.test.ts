import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedImages } from '../../src/seed.js';
import { type Harness, startHarness } from '../support/harness.js';

const status = async (url: string) => {
  const res = await fetch(url, { redirect: 'manual' });
  await res.arrayBuffer();
  return res;
};

/** Every way a client can ask for a variant wrongly is BAD_USER_INPUT naming the argument. */
describe.each([
  ['presets', {}],
  ['any', { IMAGE_TRANSFORMS: 'any', IMAGE_MAX_DIMENSION: '2000' }],
] as const)('variant arguments (IMAGE_TRANSFORMS=%s)', (mode, env) => {
  let h: Harness;
  let id: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env });
    const ids = await seedImages({
      storage: h.storage,
      images: h.container.imagesRepo,
      clock: { now: () => Date.now() },
      ownerId: 'alice',
      count: 1,
      width: 1000,
      height: 500,
    });
    id = ids[0]!;
  });
  afterAll(async () => {
    await h?.close();
  });

  async function fieldError(
    selection: string,
  ): Promise<{ code: unknown; argument: unknown; message: string }> {
    const res = await h.gql(
      `query($id: ID!) { image(id: $id) { ${selection} } }`,
      { id },
      { token: await h.token('alice') },
    );
    expect(res.errors, selection).toBeDefined();
    const e = res.errors![0]!;
    const ext = (e.extensions ?? {}) as Record<string, unknown>;
    return { code: ext.code, argument: ext.argument, message: e.message };
  }

  it('lists the configured presets', async () => {
    const res = await h.gql<{ imagePresets: unknown[] }>(
      '{ imagePresets { name width height fit format quality } }',
    );
    expect(res.data!.imagePresets).toEqual([
      { name: 'thumb', width: 320, height: 320, fit: 'COVER', format: 'WEBP', quality: 75 },
      { name: 'medium', width: 1280, height: 1280, fit: 'INSIDE', format: 'WEBP', quality: 80 },
    ]);
  });

  it.each([
    ['signedUrl(preset: "huge") { url }', 'preset'],
    ['srcset(preset: "huge")', 'preset'],
    ['proxyUrl(preset: "huge")', 'preset'],
    ['signedUrl(preset: "thumb", transform: { width: 10 }) { url }', 'preset'],
  ])('%s is BAD_USER_INPUT naming %s', async (selection, argument) => {
    const e = await fieldError(selection);
    expect(e.code).toBe('BAD_USER_INPUT');
    expect(e.argument).toBe(argument);
  });

  if (mode === 'presets') {
    it('transform is refused while only presets are allowed', async () => {
      const e = await fieldError('signedUrl(transform: { width: 100 }) { url }');
      expect(e).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'transform' });
    });
  } else {
    it.each([
      ['{ width: 0 }', 'transform.width'],
      ['{ width: 2001 }', 'transform.width'],
      ['{ height: -5 }', 'transform.height'],
      ['{ width: 100, quality: 0 }', 'transform.quality'],
      ['{ width: 100, quality: 101 }', 'transform.quality'],
      ['{ width: 100, fit: COVER }', 'transform.fit'],
      ['{ fit: INSIDE }', 'transform.width'],
    ])('transform %s is BAD_USER_INPUT naming %s', async (t, argument) => {
      const e = await fieldError(`signedUrl(transform: ${t}) { url }`);
      expect(e).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    });

    it('an unsupported format is refused by the schema', async () => {
      const res = await h.gql(
        `query($id: ID!) { image(id: $id) { signedUrl(transform: { width: 10, format: GIF }) { url } } }`,
        { id },
        { token: await h.token('alice') },
      );
      // A literal outside the enum fails validation before execution (graphql-js), naming the type.
      expect(res.errors![0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(res.errors![0]!.message).toContain('ImageFormat');
    });

    it('a transform is signed into its own URL', async () => {
      const res = await h.gql<{ image: { a: { url: string }; b: { url: string }; o: { url: string } } }>(
        `query($id: ID!) { image(id: $id) {
            a: signedUrl(transform: { width: 200, format: AVIF, quality: 50 }) { url }
            b: signedUrl(transform: { width: 200, format: AVIF, quality: 50 }) { url }
            o: signedUrl { url } } }`,
        { id },
        { token: await h.token('alice') },
      );
      expect(res.errors).toBeUndefined();
      const a = new URL(res.data!.image.a.url);
      expect(a.searchParams.get('v')).toBe('200x_-inside-avif-50');
      expect(res.data!.image.b.url).toBe(res.data!.image.a.url);
      expect(new URL(res.data!.image.o.url).searchParams.get('v')).toBeNull();
    });
  }

  it('a proxy link binds its preset: the link redirects to that variant, and only with it', async () => {
    const res = await h.gql<{ image: { thumb: string; plain: string; url: { url: string } } }>(
      `query($id: ID!) { image(id: $id) { thumb: proxyUrl(preset: "thumb") plain: proxyUrl url: signedUrl(preset: "thumb") { url } } }`,
      { id },
      { token: await h.token('alice') },
    );
    expect(res.errors).toBeUndefined();
    const { thumb, plain } = res.data!.image;
    expect(new URL(thumb).searchParams.get('preset')).toBe('thumb');
    const r = await status(thumb);
    expect(r.status).toBe(302);
    // The same step's URL as GraphQL hands out for the preset.
    expect(r.headers.get('location')).toBe(res.data!.image.url.url);
    expect(new URL(r.headers.get('location')!).searchParams.get('v')).toBe('320x320-cover-webp-75');
    // The thumb link without its preset, with another preset, or a plain link asking for one: 403.
    expect((await status(thumb.replace('&preset=thumb', ''))).status).toBe(403);
    expect((await status(thumb.replace('preset=thumb', 'preset=medium'))).status).toBe(403);
    expect((await status(`${plain}&preset=thumb`)).status).toBe(403);
    // An unknown preset is the client's mistake, before any token check.
    expect((await status(`${plain}&preset=huge`)).status).toBe(400);
  });
});
