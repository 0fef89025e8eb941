import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './viewer.js';
import './images.js';
import './variants.js';
import './urls.js';
import './url-refresh.js';
import './stats.js';
import './proxy.js';
import './uploads.js';

export function buildSchema() {
  return builder.toSchema();
}

/** The SDL checked in as schema.graphql (sorted, so diffs stay readable). */
export function printSdl(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
