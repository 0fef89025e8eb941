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
 * numbers: formatting each once instead of a Date and a string per URL. Direct-mapped on the
 * second, so a lookup is an array read and one comparison (a Map keyed by these numbers, which
 * are not small integers, hashed each one and cost ~2% of a warm page).
 */
const ISO_SLOTS = 1024;
const isoAt = new Float64Array(ISO_SLOTS).fill(Number.NaN);
const isoText: string[] = new Array(ISO_SLOTS).fill('');

export function serializeDate(v: Date | string | number): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v !== 'number') return new Date(v).toISOString();
  const slot = Math.floor(v / 1000) & (ISO_SLOTS - 1);
  if (isoAt[slot] === v) return isoText[slot]!;
  const s = new Date(v).toISOString();
  isoAt[slot] = v;
  isoText[slot] = s;
  return s;
}

builder.scalarType('DateTime', {
  description: 'ISO-8601 date and time (UTC)',
  serialize: (v) => serializeDate(v as Date | string | number),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
});
