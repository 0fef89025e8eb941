import type { ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { forbidden } from '../../errors/index.js';

/** `__schema` and `__type` are refused; `__typename` stays (clients such as Apollo need it). */
export const noIntrospection: ValidationRule = (context) => ({
  Field(node) {
    const name = node.name.value;
    if (name !== '__schema' && name !== '__type') return;
    context.reportError(
      forbidden('GraphQL introspection is disabled on this server (GRAPHQL_INTROSPECTION)'),
    );
  },
});

/** Introspection off unless enabled (GRAPHQL_INTROSPECTION; off by default in production). */
export function useIntrospectionSwitch(enabled: boolean): Plugin {
  if (enabled) return {};
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(noIntrospection);
    },
  };
}
