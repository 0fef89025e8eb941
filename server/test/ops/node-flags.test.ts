import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PRODUCT_ENV, PRODUCT_NODE_FLAGS } from '../../../bench/lib/config.js';

const root = path.resolve(import.meta.dirname, '../../..');

// The server's Node.js flags and environment live in several places: what the image runs, what
// `npm start` runs and what the benchmark measures. They must not drift apart. `npm start` (the
// embedded mode) has the environment but not the flags (docs/operations.md, "Memory and V8 flags").
describe('Node.js flags and environment of the gateway', () => {
  it('are the same for the Dockerfile and the benchmark; npm start has none', async () => {
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['start']).toContain('exec node server/dist/main.js');
    const dockerfile = await readFile(path.join(root, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd ?? '[]')).toEqual(['node', ...PRODUCT_NODE_FLAGS, 'server/dist/main.js']);
  });

  it('the environment is the same for the Dockerfile, npm start and the benchmark', async () => {
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const dockerfile = await readFile(path.join(root, 'Dockerfile'), 'utf8');
    // The runtime stage's ENV lines (up to a later stage's FROM), continuations joined:
    // `NAME=value` pairs.
    const start = dockerfile.indexOf(' AS runtime');
    expect(start).toBeGreaterThan(0);
    const next = dockerfile.slice(start).search(/^FROM /m);
    const runtime = dockerfile.slice(start, next === -1 ? undefined : start + next);
    const envPairs = new Map<string, string>();
    for (const m of runtime.replace(/\\\n\s*/g, ' ').matchAll(/^ENV (.*)$/gm)) {
      for (const pair of m[1]!.trim().split(/\s+/)) {
        const eq = pair.indexOf('=');
        envPairs.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
    }
    for (const [name, value] of Object.entries(PRODUCT_ENV)) {
      expect(envPairs.get(name), `Dockerfile ENV ${name}`).toBe(value);
      // A value the user set wins over npm start's.
      expect(pkg.scripts['start']).toContain(`${name}=\${${name}:-${value}} exec node server/dist/main.js`);
    }
  });
});
