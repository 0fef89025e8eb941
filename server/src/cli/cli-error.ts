/** A failure the command reports in one line (no stack), with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    /** The process exit code (2: bad usage, 78: configuration, 1: a dependency failed). */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
