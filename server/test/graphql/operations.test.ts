import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedImages } from '../../src/seed.js';
import { type Harness, startHarness } from '../support/harness.js';

// A document may hold several operations; a request names the one to run (`operationName`).
// Compiled execution (graphql-jit, the default) once kept one compiled function per document, so
// every request of a document ran the operation compiled first, whichever it named.
const DOCUMENT = /* GraphQL */ `
  query Visibility($id: ID!) { image(id: $id) { id visibility } }
  mutation MakePublic($id: ID!) { setImageVisibility(id: $id, visibility: PUBLIC) { id visibility } }
  mutation MakePrivate($id: ID!) { setImageVisibility(id: $id, visibility: PRIVATE) { id visibility } }
`;

describe.each([
  ['compiled (GRAPHQL_JIT=true)', 'true'],
  ['interpreted (GRAPHQL_JIT=false)', 'false'],
])('several operations in one document, %s', (_name, jit) => {
  let h: Harness;
  let id: string;
  let token: string;

  beforeAll(async () => {
    h = await startHarness({ driver: 'local', redis: 'memory', env: { GRAPHQL_JIT: jit } });
    [id] = (await seedImages({
      storage: h.storage,
      images: h.container.imagesRepo,
      clock: { now: () => Date.now() },
      ownerId: 'alice',
      count: 1,
    })) as [string];
    token = await h.token('alice');
  });
  afterAll(async () => {
    await h?.close();
  });

  async function run(operationName: string): Promise<unknown> {
    const res = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: DOCUMENT, operationName, variables: { id } }),
    });
    const body = (await res.json()) as { data?: unknown; errors?: unknown };
    expect(body.errors).toBeUndefined();
    return body.data;
  }

  it('each request runs the operation it names', async () => {
    expect(await run('Visibility')).toEqual({ image: { id, visibility: 'PRIVATE' } });
    expect(await run('MakePublic')).toEqual({ setImageVisibility: { id, visibility: 'PUBLIC' } });
    expect(await run('Visibility')).toEqual({ image: { id, visibility: 'PUBLIC' } });
    expect(await run('MakePrivate')).toEqual({ setImageVisibility: { id, visibility: 'PRIVATE' } });
    expect(await run('Visibility')).toEqual({ image: { id, visibility: 'PRIVATE' } });
    expect((await h.container.imagesRepo.findLive([id]))[0]?.visibility).toBe('private');
  });
});
