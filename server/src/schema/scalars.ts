import { Kind } from 'graphql';
import { badInput } from '../errors/index.js';
import { builder } from './builder.js';

const parseDate = (value: unknown): Date => {
  const d = typeof value === 'string' ? new Date(value) : undefined;
  if (!d || Number.isNaN(d.getTime())) {
    throw badInput('DateTime must be an ISO-8601 string');
  }
  return d;
};

/**
 * ISO strings of recent epoch-ms values. A page's URLs expire at a few instants (the window grid
 * gives every image one of 16 offsets a step), so a page of 100 `expiresAt` is a few distinct
 * numbers: formatting each once instead of a Date and a string per URL. Bounded; cleared whole.
 */
const isoOf = new Map<number, string>();
const ISO_MEMO_ENTRIES = 1024;

function serializeDate(v: Date | string | number): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v !== 'number') return new Date(v).toISOString();
  let s = isoOf.get(v);
  if (s === undefined) {
    s = new Date(v).toISOString();
    if (isoOf.size >= ISO_MEMO_ENTRIES) isoOf.clear();
    isoOf.set(v, s);
  }
  return s;
}

builder.scalarType('DateTime', {
  description: 'ISO-8601 date and time (UTC)',
  serialize: (v) => serializeDate(v as Date | string | number),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
});
