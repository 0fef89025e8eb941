import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../fixtures/images.js';
import { type CountingServer, countingServer } from '../support/counting-server.js';
import { testRedisUrl } from '../support/env.js';
import { type Harness, startHarness } from '../support/harness.js';
import { answer } from '../support/raw-graphql.js';
import { uploadFile } from '../support/upload.js';

const PNG = makePng(6, 4, [255, 94, 58], [0, 122, 255]);

describe('object keys', () => {
  let h: Harness;
  let attacker: CountingServer;

  beforeAll(async () => {
    attacker = await countingServer();
    h = await startHarness({ driver: 'cos', redis: testRedisUrl() });
  });
  afterAll(async () => {
    await h?.close();
    await attacker?.close();
  });

  it('object keys are built by the server: names, variables and viewer ids cannot steer them', async () => {
    const before = new Set(h.fixture!.objects.keys());
    const attempts: [string, Parameters<typeof uploadFile>[2]][] = [
      ['name ../../', { name: '../../etc/passwd' }],
      ['name with another owner', { name: 'u/bob/evil.png' }],
      ['name a URL', { name: `${attacker.url}/x.png` }],
    ];
    const keys: string[] = [];
    for (const [label, opts] of attempts) {
      const r = await uploadFile(h, PNG, opts);
      expect(r.errors, label).toBeUndefined();
      keys.push(r.data!.uploadImage.key);
    }
    // A name with a control character is refused outright (nothing is stored).
    const nul = await uploadFile(h, PNG, { name: 'a\u0000b.png' });
    expect(nul.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    // Viewer ids become one escaped path segment, whatever they contain.
    for (const sub of ['..', 'a:b|c@d', '.']) {
      const r = await uploadFile(h, PNG, { token: await h.token(sub) });
      expect(r.errors, sub).toBeUndefined();
      const key = r.data!.uploadImage.key;
      expect(key.split('/')).toHaveLength(3);
      expect(['.', '..']).not.toContain(key.split('/')[1]);
      keys.push(key);
    }
    // A key smuggled into the operations' variables is ignored.
    const form = new FormData();
    form.append(
      'operations',
      JSON.stringify({
        query: 'mutation($file: File!) { uploadImage(file: $file) { key } }',
        variables: { file: null, key: 'u/bob/evil.png', objectKey: '../x' },
      }),
    );
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', new Blob([new Uint8Array(PNG)], { type: 'image/png' }), 'x.png');
    const smuggled = await answer(
      await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${await h.token('alice')}` },
        body: form,
      }),
    );
    keys.push((smuggled.body!.data!.uploadImage as { key: string }).key);

    for (const key of keys)
      expect(key, key).toMatch(
        /^u\/[^/]+\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.png$/,
      );
    const added = [...h.fixture!.objects.keys()].filter((k) => !before.has(k));
    expect(added.sort()).toEqual([...keys].sort());
    for (const k of added) expect(k).not.toMatch(/bob|evil|etc|passwd|http|\.\.\//);
  });
});
