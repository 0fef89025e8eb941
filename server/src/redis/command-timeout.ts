import type { Command } from 'ioredis';
import { afterPendingIo } from '../lib/late-timer.js';

const armed = new WeakSet<Command>();

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
  if (armed.has(command)) return;
  armed.add(command);
  // Like ioredis, the timer is not cleared on reply (that would cost a closure per command); a
  // settled command ignores it.
  setTimeout(() => {
    if (command.isResolved) return;
    afterPendingIo(() => {
      if (!command.isResolved) command.reject(new CommandTimeoutError());
    });
  }, ms).unref();
}
