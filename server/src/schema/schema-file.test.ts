import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { buildSchema, printSdl, printSubgraphSdl } from './index.js';

const checkedIn = (file: string) => readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8');

it('schema.graphql is what the code-first schema prints (run `npm run schema` when this fails)', () => {
  expect(checkedIn('schema.graphql')).toBe(printSdl());
});

it('subgraph.graphql is the federation SDL the schema prints (run `npm run schema` when this fails)', () => {
  expect(checkedIn('subgraph.graphql')).toBe(printSubgraphSdl());
});

it('only FEDERATION=true adds the subgraph fields, on top of the same schema', () => {
  const plain = Object.keys(buildSchema().getQueryType()!.getFields());
  const subgraph = Object.keys(buildSchema({ federation: true }).getQueryType()!.getFields());
  expect(plain).not.toContain('_entities');
  expect(subgraph.sort()).toEqual([...plain, '_entities', '_service'].sort());
});
