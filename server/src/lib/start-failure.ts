/**
 * A start that cannot go on, with a message that says what to do: `main.ts` prints it as one
 * line, without the stack (which would bury it). Thrown for what an operator fixes, not for bugs.
 */
export class StartFailure extends Error {}
