import type { Plugin } from 'graphql-yoga';
import type { Counter } from 'prom-client';
import { unavailable } from '../../errors/index.js';

/**
 * A bound on the GraphQL operations one node works on at once (`MAX_REQUESTS_IN_FLIGHT`;
 * docs/operations.md, "Overload"). Past it an operation is refused at once, 503 with Retry-After,
 * before it costs a pool connection or a Redis command: an overloaded node answers what it
 * admitted in time instead of everything late (3,000 connections on one node without it: p99
 * 6.9 s). 0 turns it off.
 *
 * An operation is counted from its parameters, once its body is read (a body trickled in holds no
 * slot, nor does a CORS preflight), until yoga has its response: an event stream's response
 * begins at once, so a subscription is not counted for its life, whatever transport or headers
 * it came with, and an execution still running for a client that left is. Released by yoga's own
 * hook, never by the socket's events (a pipelined request whose connection dropped never gets a
 * `close`).
 */
export function useInFlightBound(max: number, shed: Pick<Counter, 'inc'>): Plugin {
  let inFlight = 0;
  /** Operations counted per request (one, unless yoga batches). */
  const counted = new WeakMap<Request, number>();
  return {
    onParams({ request }) {
      if (max === 0) return;
      if (inFlight >= max) {
        shed.inc();
        throw unavailable('This node is busy; retry shortly', {
          requestLevel: true,
          headers: { 'retry-after': '5' },
        });
      }
      inFlight++;
      counted.set(request, (counted.get(request) ?? 0) + 1);
    },
    onResponse({ request }) {
      const n = counted.get(request);
      if (n === undefined) return;
      counted.delete(request);
      inFlight -= n;
    },
  };
}
