import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { printSdl, printSubgraphSdl } from './index.js';

const checkedIn = (file: string) => readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8');

it('schema.graphql is what the code-first schema prints (run `npm run schema` when this fails)', () => {
  expect(checkedIn('schema.graphql')).toBe(printSdl());
});

it('subgraph.graphql is the federation SDL the schema prints (run `npm run schema` when this fails)', () => {
  expect(checkedIn('subgraph.graphql')).toBe(printSubgraphSdl());
});
