import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildManifest,
  keptOperations,
  type OperationManifest,
  readWebDocuments,
} from './operation-manifest.js';

// `npm run persisted [-- [<file>] [--from <dir>]… [--keep <file>]…]`: writes the allow-list for
// PERSISTED_OPERATIONS_FILE (default persisted-operations.json at the root) from the web app's
// documents, those of @signet/vue (the live-URL operations the app sends through the package)
// and those of every `--from` directory (your own client's `.graphql` files and gql/graphql
// tagged templates in `.ts`/`.vue`), plus the operations of every `--keep` allow-list (the
// release being replaced) that this schema still runs (docs/operations.md, "Upgrading").
const root = fileURLToPath(new URL('../../../', import.meta.url));
const args = process.argv.slice(2);
const from: string[] = [];
const keep: string[] = [];
let file: string | undefined;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--from') {
    const dir = args[++i];
    if (!dir) throw new Error('--from needs a directory');
    from.push(path.resolve(dir));
  } else if (args[i] === '--keep') {
    const list = args[++i];
    if (!list) throw new Error('--keep needs an allow-list file');
    keep.push(path.resolve(list));
  } else file ??= args[i];
}
const target = path.resolve(file ?? path.join(root, 'persisted-operations.json'));
const manifest = buildManifest([
  ...readWebDocuments(path.join(root, 'web/src')),
  ...readWebDocuments(path.join(root, 'packages/vue/src')),
  ...from.flatMap((dir) => readWebDocuments(dir, { interpolations: 'strip' })),
]);
const sdl = readFileSync(path.join(root, 'schema.graphql'), 'utf8');
let kept = 0;
for (const list of keep) {
  const previous = JSON.parse(readFileSync(list, 'utf8')) as OperationManifest;
  const { kept: ops, dropped } = keptOperations(previous, sdl);
  for (const [hash, text] of Object.entries(ops)) {
    if (manifest[hash] === undefined) kept++;
    manifest[hash] = text;
  }
  if (dropped.length > 0) console.log(`left out of ${list} (no longer valid): ${dropped.join(', ')}`);
}
writeFileSync(target, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `wrote ${Object.keys(manifest).length} operations to ${target}${keep.length ? ` (${kept} kept from earlier lists)` : ''}`,
);
