import type { ServerResponse } from 'node:http';
import type { Counter } from 'prom-client';
import { type AppError, unavailable } from '../errors/index.js';

/**
 * A bound on the GraphQL requests one node works on at once (`MAX_REQUESTS_IN_FLIGHT`;
 * docs/operations.md, "Overload"). Past it a request is refused at once, 503 with Retry-After,
 * before it costs a pool connection or a Redis command: an overloaded node then answers what it
 * admitted in time instead of everything late, and a client's retry may find a node with room.
 * Without it, 3,000 connections on one node queued behind its 10 database connections (p99
 * 6.9 s), and pages failed after waiting 2 s for a connection anyway. Event streams are not
 * counted (long-lived by design, bounded per viewer), nor probes, metrics, `/proxy`, the web app
 * or the local bucket. 0 turns it off.
 */
export function createInFlightBound(max: number, shed: Pick<Counter, 'inc'>) {
  let inFlight = 0;
  const done = () => {
    inFlight--;
  };
  return {
    /** Counts `res`'s request until its response closes; or, full, the refusal to send instead. */
    admit(res: ServerResponse): AppError | undefined {
      if (max === 0) return undefined;
      if (inFlight >= max) {
        shed.inc();
        return unavailable('This node is busy; retry shortly');
      }
      inFlight++;
      res.once('close', done);
      return undefined;
    },
    get inFlight(): number {
      return inFlight;
    },
  };
}
