import { GraphQLError, Kind } from 'graphql';
import { builder } from './builder.js';

const parseDate = (value: unknown): Date => {
  const d = typeof value === 'string' ? new Date(value) : undefined;
  if (!d || Number.isNaN(d.getTime())) {
    throw new GraphQLError('DateTime must be an ISO-8601 string', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return d;
};

builder.scalarType('DateTime', {
  description: 'ISO-8601 date and time (UTC)',
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(v).toISOString()),
  parseValue: parseDate,
  parseLiteral: (ast) => parseDate(ast.kind === Kind.STRING ? ast.value : undefined),
});
