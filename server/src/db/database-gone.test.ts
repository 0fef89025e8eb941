import { describe, expect, it } from 'vitest';
import { isDatabaseGone } from './unavailable.js';

const coded = (code: string, message = '') => Object.assign(new Error(message), { code });

// Only a primary that is not there takes no writes; a busy one may, so the read replica's lag
// must keep ageing then (docs/operations.md, "PostgreSQL read replica", the primary stopped).
describe('isDatabaseGone: not there, as opposed to there but busy', () => {
  it.each([
    ['refused', coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['refused at every address (AggregateError, no message)', coded('ECONNREFUSED')],
    ['no such host', coded('ENOTFOUND', 'getaddrinfo ENOTFOUND db')],
    ['shut down by an administrator', coded('57P01', 'terminating connection due to administrator command')],
    ['starting or shutting down', coded('57P03', 'the database system is shutting down')],
    ['its connection cut', new Error('Connection terminated unexpectedly')],
    ['wrapped', new Error('poll failed', { cause: coded('ECONNREFUSED') })],
  ])('%s: gone', (_what, err) => {
    expect(isDatabaseGone(err)).toBe(true);
  });

  it.each([
    ['too many connections', coded('53300', 'sorry, too many clients already')],
    ['a statement timeout', coded('57014', 'canceling statement due to statement timeout')],
    ['no free connection in this pool', new Error('timeout exceeded when trying to connect')],
    ['a protocol error', coded('08P01', 'insufficient data left in message')],
    ['not an error', 'ECONNREFUSED'],
  ])('%s: not gone (it may be taking writes)', (_what, err) => {
    expect(isDatabaseGone(err)).toBe(false);
  });
});
