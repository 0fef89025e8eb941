import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { printSdl } from './index.js';

it('schema.graphql is what the code-first schema prints (run `npm run schema` when this fails)', () => {
  const checkedIn = readFileSync(new URL('../../../schema.graphql', import.meta.url), 'utf8');
  expect(checkedIn).toBe(printSdl());
});
