import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PRODUCT_NODE_FLAGS } from '../../../bench/lib/config.js';

const root = path.resolve(import.meta.dirname, '../../..');

// The server's Node.js flags live in two places: what the image runs and what the benchmark
// measures. They must not drift apart. `npm start` (the embedded mode) runs without them.
describe('Node.js flags of the gateway', () => {
  it('are the same for the Dockerfile and the benchmark; npm start has none', async () => {
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['start']).toContain('node server/dist/main.js');
    const dockerfile = await readFile(path.join(root, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd ?? '[]')).toEqual(['node', ...PRODUCT_NODE_FLAGS, 'server/dist/main.js']);
  });
});
