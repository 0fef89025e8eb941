import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';
import { subgraphSdl, toSubgraph } from './federation.js';
import './scalars.js';
import './viewer.js';
import './images.js';
import './variants.js';
import './urls.js';
import './url-refresh.js';
import './stats.js';
import './proxy.js';
import './uploads.js';

/**
 * The schema the gateway serves; with `federation` (FEDERATION=true) it is also a federation v2
 * subgraph: `_service` and `_entities` on Query (docs/federation.md).
 */
export function buildSchema(options: { federation?: boolean } = {}) {
  const schema = builder.toSchema();
  return options.federation ? toSubgraph(schema) : schema;
}

/** The SDL checked in as schema.graphql (sorted, so diffs stay readable). */
export function printSdl(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}

/** The subgraph SDL checked in as subgraph.graphql: what `_service { sdl }` returns. */
export function printSubgraphSdl(): string {
  return subgraphSdl(buildSchema());
}
