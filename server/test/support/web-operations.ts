import { fileURLToPath } from 'node:url';
import { Kind, parse, print, visit } from 'graphql';
import { buildManifest, readWebDocuments } from '../../src/schema/operation-manifest.js';

const WEB_SRC = fileURLToPath(new URL('../../../web/src', import.meta.url));
/** The live-URL operations the web app sends through @signet/vue. */
const PACKAGE_SRC = fileURLToPath(new URL('../../../packages/vue/src', import.meta.url));

/** The web app's operations by hash: the allow-list `npm run persisted` writes for PERSISTED_OPERATIONS_FILE. */
export const webManifest = buildManifest([...readWebDocuments(WEB_SRC), ...readWebDocuments(PACKAGE_SRC)]);

/** The web app's operations by name, each with its hash and document. */
export const webOperations = new Map(
  Object.entries(webManifest).map(([hash, doc]) => [
    /^(?:query|mutation|subscription) (\w+)/.exec(doc)![1]!,
    { hash, doc },
  ]),
);

/** What Apollo Client sends: the document with `__typename` in every selection set but the root. */
export function apolloSpelling(doc: string): string {
  return print(
    visit(parse(doc), {
      SelectionSet: {
        leave(node, _key, parent) {
          if (parent && 'kind' in parent && parent.kind === Kind.OPERATION_DEFINITION) return undefined;
          if (node.selections.some((s) => s.kind === Kind.FIELD && s.name.value === '__typename'))
            return undefined;
          return {
            ...node,
            selections: [
              ...node.selections,
              { kind: Kind.FIELD, name: { kind: Kind.NAME, value: '__typename' } },
            ],
          };
        },
      },
    }),
  );
}
