// `npm run build` (server): the embedded database's cluster template, once per PGlite version
// (pglite-init.ts, buildPgliteTemplate). A first start from the build then copies it instead of
// running initdb. A template of another PGlite version (before an upgrade) is removed.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { buildPgliteTemplate, defaultPgliteTemplate } from './pglite-init.js';

const out = defaultPgliteTemplate();
const made = await buildPgliteTemplate(out);
const dist = path.dirname(out);
for (const name of await readdir(dist))
  if (name.startsWith('pglite-cluster-') && name !== path.basename(out))
    await rm(path.join(dist, name), { recursive: true, force: true });
process.stdout.write(`${made ? 'made' : 'kept'} the embedded database template ${out}\n`);
