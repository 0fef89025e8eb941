import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

const MASK = '[Suggestion hidden]';
const SUGGESTION = ' Did you mean ';

/**
 * graphql-js ends a message with its guess ("Did you mean "isAdmin"?", "Did you mean the enum
 * value "PUBLIC"?", "… the input field …"); everything from there is cut. No regular expression
 * over a message that may quote the client's input at length.
 */
export function hideSuggestion(message: string): string {
  const at = message.indexOf(SUGGESTION);
  return at < 0 ? message : `${message.slice(0, at)} ${MASK}`;
}

function masked(errors: readonly unknown[]): unknown[] {
  return errors.map((e) => {
    if (e instanceof GraphQLError && e.message.includes(SUGGESTION)) e.message = hideSuggestion(e.message);
    return e;
  });
}

type AfterValidate = Exclude<ReturnType<NonNullable<Plugin['onValidate']>>, void>;

/** Masks the suggestions of a result that is not a stream (a stream's errors come as results). */
function maskResult({ result, setResult }: { result: unknown; setResult: (r: never) => void }): void {
  if (Symbol.asyncIterator in (result as object)) return;
  const r = result as { errors?: readonly unknown[] };
  if (r.errors?.length) setResult({ ...r, errors: masked(r.errors) } as never);
}

const afterValidate: AfterValidate = ({ valid, result, setResult }) => {
  if (!valid) setResult(masked(result) as GraphQLError[]);
};
// Made once: every request of a production node passes through these.
const executeHooks = { onExecuteDone: maskResult };
const subscribeHooks = { onSubscribeResult: maskResult };

/**
 * With introspection off, the schema's names must not be spelled out one guess at a time: every
 * "Did you mean …?" is cut from validation errors (fields, arguments, types, enum values in the
 * document) and from execution's (a variable's value coerced against an enum or input type,
 * which graphql-js reports before anything runs). GraphQL Armor's own blocker matched only
 * `Did you mean "…"?`, so an enum value's suggestion went out.
 */
export function useHiddenSuggestions(): Plugin {
  return {
    onValidate: () => afterValidate,
    onExecute: () => executeHooks,
    onSubscribe: () => subscribeHooks,
  };
}
