import type { Command } from 'ioredis';
import { afterPendingIo } from '../lib/late-timer.js';

/** Marks a command whose timer is set (a property: cheaper than a WeakSet per command). */
const ARMED = Symbol('signet.commandTimeout');

/**
 * A command that got no reply in time. It was sent: Redis may still have run it (a write past
 * its timeout can have been applied).
 */
export class CommandTimeoutError extends Error {
  constructor() {
    // ioredis' own wording, which logs and operators already know.
    super('Command timed out');
    this.name = 'CommandTimeoutError';
  }
}

/**
 * Fails `command` with "Command timed out" if its reply has not been read `ms` after it was sent,
 * counting the replies that arrived while this process was busy as on time.
 *
 * ioredis' own `commandTimeout` fires in the event loop's timers phase, before the poll phase of
 * the same turn reads the socket: when one turn of this process takes longer than the timeout (a
 * loaded node serving 32 cold pages at once), a reply Redis sent in a millisecond is declared
 * late. The gateway then opens its cache breaker and signs every page directly for a second, on
 * the node that was already the busiest (docs/benchmarks.md, finding 27). Here the timeout looks
 * once more after the turn's pending I/O has been read, so only Redis' lateness counts, never
 * ours. See docs/architecture.md, "The hot path" (step 10).
 */
export function armCommandTimeout(command: Command, ms: number): void {
  // A cluster re-sends a redirected command through the same path: one timer per command.
  const marked = command as Command & { [ARMED]?: true };
  if (marked[ARMED]) return;
  marked[ARMED] = true;
  // (A command that settled cleared this timer: when it fires, only replies still unread can
  // have settled it meanwhile.)
  const timer = setTimeout(() => {
    afterPendingIo(() => {
      if (!command.isResolved) command.reject(new CommandTimeoutError());
    });
  }, ms);
  // Cleared when the command settles, as ioredis clears its own: a timer left to run would keep
  // the command (its arguments and its reply) alive for the whole timeout, long enough to be
  // promoted out of the young generation (~20 µs more CPU per command, measured in a loop of
  // MGETs). ioredis looks both up on the command when it settles it.
  const { resolve, reject } = command;
  command.resolve = (result) => {
    clearTimeout(timer);
    resolve(result);
  };
  command.reject = (err) => {
    clearTimeout(timer);
    reject(err);
  };
}
