import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSdl, printSubgraphSdl } from './index.js';

// `npm run schema`: regenerates the checked-in schema.graphql from the code-first schema, and
// subgraph.graphql, the federation SDL (`_service { sdl }`, docs/federation.md).
for (const [file, sdl] of [
  ['schema.graphql', printSdl()],
  ['subgraph.graphql', printSubgraphSdl()],
] as const) {
  const target = fileURLToPath(new URL(`../../../${file}`, import.meta.url));
  writeFileSync(target, sdl);
  console.log(`wrote ${target}`);
}
