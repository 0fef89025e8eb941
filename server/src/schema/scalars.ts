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

builder.scalarType('DateTime', {
  description: 'ISO-8601 date and time (UTC)',
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(v).toISOString()),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
});
