import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildManifest, readWebDocuments } from './operation-manifest.js';

// `npm run persisted [-- <file>]`: writes the allow-list for PERSISTED_OPERATIONS_FILE (default
// persisted-operations.json at the root) from the web app's documents and those of @signet/vue
// (the live-URL operations the app sends through the package).
const root = fileURLToPath(new URL('../../../', import.meta.url));
const target = path.resolve(process.argv[2] ?? path.join(root, 'persisted-operations.json'));
const manifest = buildManifest([
  ...readWebDocuments(path.join(root, 'web/src')),
  ...readWebDocuments(path.join(root, 'packages/vue/src')),
]);
writeFileSync(target, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${Object.keys(manifest).length} operations to ${target}`);
