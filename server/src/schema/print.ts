import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSdl } from './index.js';

// `npm run schema`: regenerates the checked-in schema.graphql from the code-first schema.
const target = fileURLToPath(new URL('../../../schema.graphql', import.meta.url));
writeFileSync(target, printSdl());
console.log(`wrote ${target}`);
