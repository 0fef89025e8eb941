// The page's one SQL statement as the benchmark's own contenders send it (the hand-written
// reference, the ceiling's `rows` mode, bench/tools/page-sql-micro.ts): the same text for all, so
// they measure the same statement. The columns, in their order, are the ones the gateway's page
// statement selects for the same queries (`pageSql` in server/src/db/images-repo.ts, worked out
// from the query's fields; server/test/graphql/page-projection.test.ts checks the gateway's side):
// kept in step with it by hand.

/** Scenario 1's page (`id` and an original's `signedUrl`). */
export const PAGE_COLUMNS = 'id, object_key, home_region, replicated_regions, created_at';

/** Scenario 14's page (a variant's URL also reads the type, the size and the variants made). */
export const VARIANT_PAGE_COLUMNS =
  'id, object_key, content_type, width, height, home_region, replicated_regions, variants_ready, created_at';

/** Every column of a row (a page whose fields the gateway cannot tell). */
export const ALL_COLUMNS =
  'id, owner_id, object_key, content_type, byte_size, width, height, etag, visibility, placeholder, ' +
  'home_region, replicated_regions, variants_ready, created_at';

/**
 * The owner's live images, newest first: $1 the owner, $2 the limit (a page and one more); with
 * `after`, the page after a cursor's row ($3 its created_at, $4 its id: the gateway's keyset).
 */
export function pageStatement(columns: string, after = false): string {
  return (
    `select ${columns} from images where owner_id = $1 and deleted_at is null ` +
    (after ? 'and (created_at, id) < ($3, $4::uuid) ' : '') +
    'order by created_at desc, id desc limit $2'
  );
}
