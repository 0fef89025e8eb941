import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildManifest, readWebDocuments } from './operation-manifest.js';

// `npm run persisted [-- [<file>] [--from <dir>]…]`: writes the allow-list for
// PERSISTED_OPERATIONS_FILE (default persisted-operations.json at the root) from the web app's
// documents, those of @signet/vue (the live-URL operations the app sends through the package)
// and those of every `--from` directory (your own client's `.graphql` files and gql/graphql
// tagged templates in `.ts`/`.vue`).
const root = fileURLToPath(new URL('../../../', import.meta.url));
const args = process.argv.slice(2);
const from: string[] = [];
let file: string | undefined;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--from') {
    const dir = args[++i];
    if (!dir) throw new Error('--from needs a directory');
    from.push(path.resolve(dir));
  } else file ??= args[i];
}
const target = path.resolve(file ?? path.join(root, 'persisted-operations.json'));
const manifest = buildManifest([
  ...readWebDocuments(path.join(root, 'web/src')),
  ...readWebDocuments(path.join(root, 'packages/vue/src')),
  ...from.flatMap((dir) => readWebDocuments(dir, { interpolations: 'strip' })),
]);
writeFileSync(target, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${Object.keys(manifest).length} operations to ${target}`);
