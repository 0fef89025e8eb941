import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import type { GraphQLError, ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { badInput } from '../../errors/index.js';

/**
 * Shape limits of a document, checked before anything runs. The web app's largest document
 * (GalleryPage, with its fragment) has depth 7, 5 aliases and 5 directives (the presets it asks
 * when the gateway has them), so each bound leaves room for hand-written queries while keeping a
 * hostile document small (server/test/graphql/persisted.test.ts runs every web operation
 * through them).
 */
export const QUERY_LIMITS = {
  depth: 10,
  aliases: 10,
  directives: 10,
  tokens: 1000,
} as const;

/** GraphQL Armor's errors carry no code and a misleading "Syntax Error:" prefix. */
function refuse(ctx: ValidationContext | null, err: GraphQLError): void {
  const coded = badInput(err.message.replace(/^Syntax Error: /, ''), { limit: true });
  // A validation rule reports (the client hears every limit it broke); the parser must throw.
  if (ctx) ctx.reportError(coded);
  else throw coded;
}

/**
 * Depth, aliases, directives and tokens via GraphQL Armor, refused as BAD_USER_INPUT. Armor's
 * cost limit stays off: it only multiplies by a literal `first` and never sees variables, so the
 * variable-aware useCostLimit does that job. Armor's suggestion blocker stays off too:
 * useHiddenSuggestions does that job, for enum values and variables as well.
 */
export function useQueryLimits(): Plugin {
  const common = { onReject: [refuse], propagateOnRejection: false, exposeLimits: true };
  return EnvelopArmorPlugin({
    blockFieldSuggestion: { enabled: false },
    costLimit: { enabled: false },
    maxDepth: { ...common, n: QUERY_LIMITS.depth },
    maxAliases: { ...common, n: QUERY_LIMITS.aliases },
    maxDirectives: { ...common, n: QUERY_LIMITS.directives },
    maxTokens: { ...common, n: QUERY_LIMITS.tokens },
  }) as Plugin;
}
