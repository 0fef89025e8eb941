import { CompiledQuery, type ExpressionBuilder, type Kysely, sql } from 'kysely';
import { BoundedMap } from '../lib/bounded-map.js';
import { primaryReads, type ReadRouting } from './read-routing.js';
import type { Database, Db, ImageRow, ImageRowRaw, ImageVisibility } from './types.js';
import {
  ANIMATION_UNKNOWN_INDEX,
  DELETED_ROWS_INDEX,
  type EnsureOptions,
  ensureWorkListIndex,
  type IndexReadiness,
} from './work-list-indexes.js';

export interface Cursor {
  createdAt: Date;
  id: string;
}

export interface PageResult {
  rows: ImageRow[];
  hasNextPage: boolean;
  totalCount: number | undefined;
}

/** A row to insert: every column of a row, chosen by the server (private unless said). */
export type NewImage = Omit<
  ImageRow,
  'visibility' | 'placeholder' | 'variantsReady' | 'homeRegion' | 'replicatedRegions' | 'animated'
> & {
  /** SIGNET_REGION of the node that stored the object (undefined: one region). */
  homeRegion?: string | null;
  visibility?: ImageVisibility;
  /** The placeholder may come later (computed after upload). */
  placeholder?: string | null;
  /**
   * Whether the original is animated, from its head (`isAnimated`: uploads); false for Signet's
   * own generated stills (the seed, the demo photos); null: not looked at, and the backfill will
   * (docs/architecture.md, "Variants"). Required: the column has no default (migration 006).
   */
  animated: boolean | null;
};

/**
 * Which rows a lookup by id may return, decided by the images domain (images/visibility.ts):
 * every live row (admins, services), or the owner's and/or the public ones. It becomes part of
 * the one statement of the lookup, never a second query or a filter after it.
 */
export type ReadScope = { all: true } | { all: false; ownerId: string | null; publicToo: boolean };

/** One lookup of `findReadableMany`: the ids one viewer asks for, with its scope. */
export interface ReadLookup {
  scope: ReadScope;
  ids: readonly string[];
}

/** A scope that lets nothing through. */
const readsNothing = (scope: ReadScope) => !scope.all && scope.ownerId === null && !scope.publicToo;

/** The scope as a SQL filter of the lookup's statement. */
function scopeFilter(eb: ExpressionBuilder<Database, 'images'>, scope: ReadScope & { all: false }) {
  const parts = [];
  if (scope.ownerId !== null) parts.push(eb('owner_id', '=', scope.ownerId));
  if (scope.publicToo) parts.push(eb('visibility', '=', 'public'));
  return eb.or(parts);
}

/** The same filter on a row already read: how `findReadableMany` splits one statement's rows. */
function inScope(scope: ReadScope, row: ImageRow): boolean {
  if (scope.all) return true;
  return (
    (scope.ownerId !== null && row.ownerId === scope.ownerId) ||
    (scope.publicToo && row.visibility === 'public')
  );
}

/** Whether the row naming an object key is live or soft-deleted (`keysWithRows`). */
export type KeyRowState = 'live' | 'deleted';

/** What an import knows of an object it adopts (images/bucket-import.ts). */
export type ImportedImage = Pick<
  ImageRow,
  'id' | 'ownerId' | 'objectKey' | 'contentType' | 'byteSize' | 'width' | 'height' | 'etag' | 'createdAt'
> & {
  homeRegion?: string | null;
  /** From the head the import read (`isAnimated`), as an upload's. */
  animated: boolean;
  /** `signet import --visibility` (default private, as an upload's). */
  visibility?: ImageVisibility;
};

/**
 * A row as the server sees it. A page row asked for only some fields (`listPage`'s `fields`) has
 * the others undefined, not a default (an empty `variantsReady`, a `byteSize` NaN would look
 * like real values).
 */
export function toImageRow(r: Omit<ImageRowRaw, 'variants_of' | 'deleted_at'>): ImageRow {
  return {
    id: r.id,
    ownerId: r.owner_id,
    objectKey: r.object_key,
    contentType: r.content_type,
    byteSize: r.byte_size === undefined ? (undefined as never) : Number(r.byte_size),
    width: r.width,
    height: r.height,
    etag: r.etag,
    visibility: r.visibility,
    placeholder: r.placeholder,
    homeRegion: r.home_region,
    replicatedRegions: r.replicated_regions,
    variantsReady: r.variants_ready === undefined ? (undefined as never) : (r.variants_ready ?? []),
    animated: r.animated,
    createdAt: r.created_at,
  };
}

const columns = [
  'id',
  'owner_id',
  'object_key',
  'content_type',
  'byte_size',
  'width',
  'height',
  'etag',
  'visibility',
  'placeholder',
  'home_region',
  'replicated_regions',
  'variants_ready',
  'animated',
  'created_at',
] as const;

/** The column of each row field (the page statement selects the fields a query reads). */
const COLUMN_OF: Record<keyof ImageRow, (typeof columns)[number]> = {
  id: 'id',
  ownerId: 'owner_id',
  objectKey: 'object_key',
  contentType: 'content_type',
  byteSize: 'byte_size',
  width: 'width',
  height: 'height',
  etag: 'etag',
  visibility: 'visibility',
  placeholder: 'placeholder',
  homeRegion: 'home_region',
  replicatedRegions: 'replicated_regions',
  variantsReady: 'variants_ready',
  animated: 'animated',
  createdAt: 'created_at',
};

/** Row fields a page statement may leave out; `id` and `createdAt` (the cursor) are always read. */
export type PageFields = ReadonlySet<keyof ImageRow>;

export interface ImagesRepo {
  /**
   * One statement: a page of the owner's live images, newest first (keyset on created_at, id).
   * With `fields`, only those columns are read (and `id`, `created_at`); the rows' other fields
   * are undefined. The schema passes what the query's fields read (schema/page-projection.ts).
   */
  listPage(
    ownerId: string,
    first: number,
    after: Cursor | undefined,
    withTotal: boolean,
    fields?: PageFields,
  ): Promise<PageResult>;
  /** One statement: the live images among ids that the scope lets through (any order). */
  findReadable(scope: ReadScope, ids: readonly string[]): Promise<ImageRow[]>;
  /**
   * One statement for many lookups at once (subscriptions opened together,
   * images/visibility-batch.ts): each lookup gets exactly what `findReadable` would give it.
   */
  findReadableMany(lookups: readonly ReadLookup[]): Promise<ImageRow[][]>;
  /** One statement: sets a live image's visibility; returns the row, or null when there was none. */
  setVisibility(id: string, visibility: ImageVisibility): Promise<ImageRow | null>;
  /**
   * Live images by id whatever the owner (proxy and background work), any order. On the replica
   * when one is in use, with the ids it does not have looked up again on the primary (one
   * statement when it has them all); `primary`: on the primary only.
   */
  findLive(ids: readonly string[], opts?: { primary?: boolean }): Promise<ImageRow[]>;
  insert(img: NewImage): Promise<ImageRow>;
  /**
   * One statement: rows for objects already in the bucket (`signet import`). A key that has a row
   * already (live or deleted) is left as it is, so a second or resumed run adds nothing. Returns
   * the keys it inserted. Columns not given keep their defaults.
   */
  insertImported(rows: readonly ImportedImage[]): Promise<string[]>;
  /**
   * Marks the image deleted and clears what describes the photo (placeholder, width, height,
   * etag: nothing reads them on a deleted row); returns the row as it is now, or null when there
   * was none. The row stays until the purge (`DeletedRowRecords.purgeDeleted`).
   */
  softDelete(ownerId: string, id: string, at: Date): Promise<ImageRow | null>;
  /** Removes a row outright (undoing an insert whose object could not be kept). */
  hardDelete(id: string): Promise<void>;
  countLive(ownerId: string): Promise<number>;
  /** One statement: how many live images the owner has and their bytes (for the upload quota). */
  usage(ownerId: string): Promise<{ files: number; bytes: number }>;
  /**
   * One statement: which of these object keys a row names, each `live` or `deleted`
   * (soft-deleted); a key no row names is absent. `signet import` tells a deleted row's key from
   * an imported one (and revives no row); the orphan sweep removes the variant sets of keys a
   * deleted row names (a deleted row's object was deleted before its row was).
   */
  keysWithRows(keys: readonly string[]): Promise<Map<string, KeyRowState>>;
  /**
   * One statement: which of these object keys a live row names (the orphan sweep deletes objects,
   * and what is kept of them, that none does; docs/architecture.md, "Deleting an image").
   */
  keysWithLiveRows(keys: readonly string[]): Promise<Set<string>>;
  /**
   * One statement: up to `limit` live rows without a placeholder, oldest first, after `after`
   * (keyset on created_at, id, so one backfill run visits each row once).
   */
  missingPlaceholders(after: Cursor | undefined, limit: number): Promise<ImageRow[]>;
  /** Sets the placeholder of a row that has none; false when it had one or is gone. */
  setPlaceholder(id: string, placeholder: string): Promise<boolean>;
  /**
   * One statement: up to `limit` live rows created after `since` whose home is another region and
   * that `region`'s bucket is not known to hold yet, oldest first (the replication check).
   */
  pendingReplicas(region: string, since: Date, limit: number): Promise<ImageRow[]>;
  /** One statement: records that `region`'s bucket holds these images' objects. */
  markReplicated(region: string, ids: readonly string[]): Promise<number>;
  /**
   * One statement: up to `limit` live rows whose derived variants were never made, oldest first,
   * after `after` (the variants backfill; docs/architecture.md, "Variants on s3"); with
   * `homeRegion` (several regions) only rows homed in that region.
   */
  missingVariants(after: Cursor | undefined, limit: number, homeRegion?: string): Promise<ImageRow[]>;
  /** Adds a made variant's key to a live row; false when the row is gone (deleted meanwhile). */
  addVariantReady(id: string, variantKey: string): Promise<boolean>;
  /** Notes that a live row's variants were made for the preset set `tag`. */
  setVariantsOf(id: string, tag: string): Promise<void>;
  /** Rows whose variants were made for another preset set are made again; returns how many. */
  resetVariantsOf(tag: string): Promise<number>;
}

/**
 * The animation backfill's statements (docs/architecture.md, "Variants"). Apart from
 * `ImagesRepo`, which read-only stand-ins of the repository implement whole (the bench's static
 * pages), and which have nothing to record.
 */
export interface AnimationRecords {
  /**
   * Makes sure the work list's partial index is there, building it (concurrently) if not: a
   * backfill run waits for this before its first statement, which would scan the whole table
   * without the index (db/work-list-indexes.ts).
   */
  prepareAnimationWorkList(o?: EnsureOptions): Promise<IndexReadiness>;
  /**
   * One statement: up to `limit` live WebP, PNG and AVIF rows whose animation is not known yet
   * (null), oldest first, after `after` (keyset on created_at, id, so one run visits each row once).
   */
  animationUnknown(after: Cursor | undefined, limit: number): Promise<ImageRow[]>;
  /**
   * One statement: records what a look at the original found on a live row that has not said
   * (null). `true` is also written over `false`: a renderer that decoded the whole original saw
   * frames the head did not show. Returns whether the row changed.
   */
  recordAnimation(id: string, animated: boolean): Promise<boolean>;
}

/** A soft-deleted row as erasure walks it: what names its object and its cached URLs. */
export interface DeletedRow {
  id: string;
  objectKey: string;
  deletedAt: Date;
}

/**
 * The statements over deleted rows and over one owner's rows: the purge of rows deleted longer
 * ago than DELETED_ROW_RETENTION_DAYS (images/deleted-row-purge.ts) and `signet erase-owner`
 * (images/erase-owner.ts). Apart from `ImagesRepo` for the reason `AnimationRecords` is.
 */
export interface DeletedRowRecords {
  /**
   * Makes sure the deleted rows' partial index is there, building it (concurrently) if not: a
   * purge run waits for this before its first statement (db/work-list-indexes.ts).
   */
  prepareDeletedWorkList(o?: EnsureOptions): Promise<IndexReadiness>;
  /**
   * One statement: removes up to `limit` rows soft-deleted before `before`, the longest deleted
   * first; returns how many it removed.
   */
  purgeDeleted(before: Date, limit: number): Promise<number>;
  /** One statement: up to `limit` of the owner's live rows, newest first. */
  ownerLiveRows(ownerId: string, limit: number): Promise<ImageRow[]>;
  /** One statement: up to `limit` of the owner's soft-deleted rows, the longest deleted first. */
  ownerDeletedRows(ownerId: string, limit: number): Promise<DeletedRow[]>;
  /** One statement: how many live and soft-deleted rows the owner has. */
  ownerCounts(ownerId: string): Promise<{ live: number; deleted: number }>;
  /** One statement: removes these rows of the owner if they are soft-deleted; returns how many. */
  removeDeleted(ownerId: string, ids: readonly string[]): Promise<number>;
}

/** A live row as `signet missing-objects` compares it with the bucket (images/missing-objects.ts). */
export interface LiveKeyRow {
  id: string;
  ownerId: string;
  objectKey: string;
  createdAt: Date;
}

/**
 * The walk of live rows by object key (`signet missing-objects`). Apart from `ImagesRepo` for the
 * reason `AnimationRecords` is.
 */
export interface ObjectKeyWalk {
  /**
   * One statement: up to `limit` live rows whose object key sorts after `after`, in the order of
   * the column's own collation, with `ownerId` only that owner's. That is the order of the unique
   * index on object_key, so every page is a range scan of it. Not in byte order (`COLLATE "C"`):
   * the index is in the database's collation (en_US on many servers), so a keyset in byte order
   * could use no index and every page would scan and sort all live rows, a walk quadratic in the
   * table. The caller puts each page in byte order itself (images/missing-objects.ts).
   */
  liveRowsByKey(after: string | undefined, limit: number, ownerId?: string): Promise<LiveKeyRow[]>;
}

/**
 * The page statement, written out once per shape (with or without a cursor, with or without the
 * total, which columns) instead of built and compiled per request: the query builder's objects
 * and compile were ~0.1 ms of CPU per page (docs/benchmarks.md). $1 owner, $2 limit, $3/$4 the
 * cursor. A page that reads few fields selects few columns: decoding 1,400 fields of 100 rows was
 * most of the statement's cost in this process (finding 35).
 */
function pageSql(mask: number, withTotal: boolean, after: boolean): string {
  const key = mask * 4 + (withTotal ? 2 : 0) + (after ? 1 : 0);
  let text = pageSqls.get(key);
  if (text !== undefined) return text;
  const picked = columns.filter((_, i) => (mask & (1 << i)) !== 0);
  text =
    `select ${picked.map((c) => `"${c}"`).join(', ')}` +
    (withTotal
      ? ', (select count(*) from "images" "c" where "c"."owner_id" = $1 and "c"."deleted_at" is null) as "total_count"'
      : '') +
    ' from "images" where "owner_id" = $1 and "deleted_at" is null' +
    (after ? ' and (created_at, id) < ($3, $4::uuid)' : '') +
    ' order by "created_at" desc, "id" desc limit $2';
  pageSqls.set(key, text);
  return text;
}

/** Each shape's text, by key; the selections clients send are few, and a flood of odd ones is bounded. */
const pageSqls = new BoundedMap<number, string>(256);

const ALL_COLUMNS = (1 << columns.length) - 1;
const BIT_OF = Object.fromEntries(
  Object.entries(COLUMN_OF).map(([field, column]) => [field, 1 << columns.indexOf(column)]),
) as Record<keyof ImageRow, number>;
/** The cursor's columns: every page reads them. */
const CURSOR_COLUMNS = BIT_OF.id | BIT_OF.createdAt;

/** The columns of `fields` as a bit set over `columns` (all of them without `fields`). */
function columnMask(fields: PageFields | undefined): number {
  if (!fields) return ALL_COLUMNS;
  let mask = CURSOR_COLUMNS;
  for (const f of fields) mask |= BIT_OF[f];
  return mask;
}

type PageRaw = Omit<ImageRowRaw, 'variants_of' | 'deleted_at'> & { total_count?: string };

/** One statement: a page of the owner's live images (keyset on created_at, id), on `k`. */
async function listPage(
  k: Kysely<Database>,
  ownerId: string,
  first: number,
  after: Cursor | undefined,
  withTotal: boolean,
  fields: PageFields | undefined,
): Promise<PageResult> {
  // The total rides in the same statement, and only when the query asked for it.
  const text = pageSql(columnMask(fields), withTotal, after !== undefined);
  const query = CompiledQuery.raw(
    text,
    after ? [ownerId, first + 1, after.createdAt, after.id] : [ownerId, first + 1],
  );
  const { rows } = await k.executeQuery<PageRaw>(query);
  const hasNextPage = rows.length > first;
  const n = hasNextPage ? first : rows.length;
  const page: ImageRow[] = new Array(n);
  for (let i = 0; i < n; i++) page[i] = toImageRow(rows[i]!);
  let total: number | undefined;
  if (withTotal) {
    // A cursor past the last image gives no row to carry the total: then it is asked on its own.
    total = rows[0]
      ? Number(rows[0].total_count)
      : after
        ? Number(
            (
              await k.executeQuery<{ n: string }>(
                CompiledQuery.raw(
                  'select count(*) as "n" from "images" where "owner_id" = $1 and "deleted_at" is null',
                  [ownerId],
                ),
              )
            ).rows[0]?.n ?? 0,
          )
        : 0;
  }
  return { rows: page, hasNextPage, totalCount: total };
}

/**
 * @param reads where page queries and visibility lookups run (a read replica when configured);
 * writes, and the reads that must be exact (quota, the orphan sweep's keys), use the primary.
 */
export function createImagesRepo(
  db: Db,
  reads: ReadRouting = primaryReads(db.kysely),
): ImagesRepo & AnimationRecords & DeletedRowRecords & ObjectKeyWalk {
  const k = db.kysely;
  /** Live rows, every column: what the backfills' walks select from. */
  const liveRows = () => k.selectFrom('images').select(columns).where('deleted_at', 'is', null);
  /**
   * The backfills' walk (placeholders, variants, animation): `limit` rows of `q` oldest first,
   * after a (created_at, id) cursor, on the partial index each one's predicate matches.
   */
  const oldestAfter = async (q: ReturnType<typeof liveRows>, after: Cursor | undefined, limit: number) => {
    let page = q.orderBy('created_at', 'asc').orderBy('id', 'asc').limit(limit);
    if (after) page = page.where(sql<boolean>`(created_at, id) > (${after.createdAt}, ${after.id}::uuid)`);
    return (await page.execute()).map(toImageRow);
  };

  /** Which of these object keys a row names (live rows only, or deleted ones too). */
  async function keysNamed(keys: readonly string[], liveOnly: boolean): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    // object_key is unique, so each key is one index probe.
    let q = k
      .selectFrom('images')
      .select('object_key')
      .where('object_key', 'in', keys as string[]);
    if (liveOnly) q = q.where('deleted_at', 'is', null);
    return new Set((await q.execute()).map((r) => r.object_key));
  }

  return {
    listPage(ownerId, first, after, withTotal, fields) {
      return reads.read(ownerId, (r) => listPage(r, ownerId, first, after, withTotal, fields));
    },

    async findReadable(scope, ids) {
      if (ids.length === 0 || readsNothing(scope)) return [];
      // The viewer's own writes pin its reads to the primary for a while (read-routing.ts).
      const rows = await reads.read(scope.all ? undefined : (scope.ownerId ?? undefined), (r) => {
        let q = r
          .selectFrom('images')
          .select(columns)
          .where('id', 'in', ids as string[])
          .where('deleted_at', 'is', null);
        if (!scope.all) q = q.where((eb) => scopeFilter(eb, scope));
        return q.execute();
      });
      return rows.map(toImageRow);
    },

    async findReadableMany(lookups) {
      const asked = lookups.filter((l) => l.ids.length > 0 && !readsNothing(l.scope));
      if (asked.length === 0) return lookups.map(() => []);
      const ids = [...new Set(asked.flatMap((l) => l.ids))];
      // The union of the lookups' filters (each distinct one once), then every lookup keeps the
      // rows its own filter lets through: the same rows `findReadable` would have returned it.
      const anyAll = asked.some((l) => l.scope.all);
      const owners = [
        ...new Set(asked.flatMap((l) => (!l.scope.all && l.scope.ownerId !== null ? [l.scope.ownerId] : []))),
      ];
      const publicToo = asked.some((l) => !l.scope.all && l.scope.publicToo);
      // On the primary when any of the owners asking has just written (read-routing.ts).
      const rows = await reads.readFor(owners, (r) => {
        let q = r.selectFrom('images').select(columns).where('id', 'in', ids).where('deleted_at', 'is', null);
        if (!anyAll) {
          q = q.where((eb) => {
            const parts = [];
            if (owners.length > 0) parts.push(eb('owner_id', 'in', owners));
            if (publicToo) parts.push(eb('visibility', '=', 'public'));
            return eb.or(parts);
          });
        }
        return q.execute();
      });
      const byId = new Map(rows.map((r) => [r.id, toImageRow(r)]));
      return lookups.map((l) => {
        if (readsNothing(l.scope)) return [];
        const out: ImageRow[] = [];
        for (const id of new Set(l.ids)) {
          const row = byId.get(id);
          if (row && inScope(l.scope, row)) out.push(row);
        }
        return out;
      });
    },

    async setVisibility(id, visibility) {
      const row = await k
        .updateTable('images')
        .set({ visibility })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .returning(columns)
        .executeTakeFirst();
      // The owner reads its own change at once, whoever made it.
      if (row) await reads.wrote(row.owner_id);
      return row ? toImageRow(row) : null;
    },

    async findLive(ids, opts) {
      if (ids.length === 0) return [];
      const live = (on: Kysely<Database>, wanted: readonly string[]) =>
        on
          .selectFrom('images')
          .select(columns)
          .where('id', 'in', wanted as string[])
          .where('deleted_at', 'is', null)
          .execute();
      if (opts?.primary) return (await live(k, ids)).map(toImageRow);
      // No viewer's own writes to see: the proxy's row check and background work take a row's
      // changes up to the replica's lag bound late (RecentRows already keeps rows for seconds).
      let ranOn: Kysely<Database> = k;
      const rows = await reads.read(undefined, (r) => {
        ranOn = r;
        return live(r, ids);
      });
      if (ranOn !== k) {
        // A row the replica does not have may be one it has not replayed yet (an upload of a
        // moment ago), not a deleted one: the refresh sweep would unschedule it for good, the
        // after-upload variants job skip it, the proxy answer 404. The primary decides those
        // (docs/operations.md, "PostgreSQL read replica"). Outside `read`: a failure of the
        // primary must not mark the replica down.
        const found = new Set(rows.map((r) => r.id));
        const missing = [...new Set(ids)].filter((id) => !found.has(id));
        if (missing.length > 0) rows.push(...(await live(k, missing)));
      }
      return rows.map(toImageRow);
    },

    async insert(img) {
      const row = await k
        .insertInto('images')
        .values({
          id: img.id,
          owner_id: img.ownerId,
          object_key: img.objectKey,
          content_type: img.contentType,
          byte_size: img.byteSize,
          width: img.width,
          height: img.height,
          etag: img.etag,
          visibility: img.visibility ?? 'private',
          placeholder: img.placeholder ?? null,
          home_region: img.homeRegion ?? null,
          animated: img.animated,
          created_at: img.createdAt,
        })
        .returning(columns)
        .executeTakeFirstOrThrow();
      // Before the answer leaves: the uploader's next page must list it.
      await reads.wrote(img.ownerId);
      return toImageRow(row);
    },

    async insertImported(rows) {
      if (rows.length === 0) return [];
      const inserted = await k
        .insertInto('images')
        .values(
          rows.map((img) => ({
            id: img.id,
            owner_id: img.ownerId,
            object_key: img.objectKey,
            content_type: img.contentType,
            byte_size: img.byteSize,
            width: img.width,
            height: img.height,
            etag: img.etag,
            home_region: img.homeRegion ?? null,
            animated: img.animated,
            visibility: img.visibility ?? 'private',
            created_at: img.createdAt,
          })),
        )
        .onConflict((oc) => oc.column('object_key').doNothing())
        .returning('object_key')
        .execute();
      return inserted.map((r) => r.object_key);
    },

    async softDelete(ownerId, id, at) {
      const row = await k
        .updateTable('images')
        // What describes the photo goes with it: the placeholder is a tiny preview of the image
        // itself. The key, the owner and the time stay for the orphan sweep and `signet import`
        // (keysWithRows) until the purge removes the row (docs/architecture.md, "Deleting an image").
        .set({ deleted_at: at, placeholder: null, width: null, height: null, etag: null })
        .where('id', '=', id)
        .where('owner_id', '=', ownerId)
        .where('deleted_at', 'is', null)
        .returning(columns)
        .executeTakeFirst();
      if (row) await reads.wrote(ownerId);
      return row ? toImageRow(row) : null;
    },

    async hardDelete(id) {
      await k.deleteFrom('images').where('id', '=', id).execute();
    },

    async countLive(ownerId) {
      const r = await k
        .selectFrom('images')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('owner_id', '=', ownerId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return Number(r?.n ?? 0);
    },

    async usage(ownerId) {
      // Rides on the partial index of live rows per owner.
      const r = await k
        .selectFrom('images')
        .select((eb) => [
          eb.fn.countAll<string>().as('files'),
          sql<string>`coalesce(sum(byte_size), 0)`.as('bytes'),
        ])
        .where('owner_id', '=', ownerId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return { files: Number(r?.files ?? 0), bytes: Number(r?.bytes ?? 0) };
    },

    keysWithLiveRows: (keys) => keysNamed(keys, true),

    async keysWithRows(keys) {
      const states = new Map<string, KeyRowState>();
      if (keys.length === 0) return states;
      // object_key is unique: one row (one index probe) per key.
      const rows = await k
        .selectFrom('images')
        .select(['object_key', 'deleted_at'])
        .where('object_key', 'in', keys as string[])
        .execute();
      for (const r of rows) states.set(r.object_key, r.deleted_at === null ? 'live' : 'deleted');
      return states;
    },

    missingPlaceholders(after, limit) {
      // Rides on the partial index images_placeholder_missing.
      return oldestAfter(liveRows().where('placeholder', 'is', null), after, limit);
    },

    async setPlaceholder(id, placeholder) {
      const r = await k
        .updateTable('images')
        .set({ placeholder })
        .where('id', '=', id)
        .where('placeholder', 'is', null)
        // A placeholder computed while the image was being deleted must not come back on its row.
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    async pendingReplicas(region, since, limit) {
      // Rides on the partial index images_home_region_created (recent rows with a home region).
      const rows = await k
        .selectFrom('images')
        .select(columns)
        .where('home_region', 'is not', null)
        .where('deleted_at', 'is', null)
        .where('created_at', '>', since)
        .where('home_region', '<>', region)
        .where(sql<boolean>`not (${region} = any(replicated_regions))`)
        .orderBy('created_at', 'asc')
        .orderBy('id', 'asc')
        .limit(limit)
        .execute();
      return rows.map(toImageRow);
    },

    async markReplicated(region, ids) {
      if (ids.length === 0) return 0;
      const r = await k
        .updateTable('images')
        .set({ replicated_regions: sql`array_append(replicated_regions, ${region})` })
        .where('id', 'in', ids as string[])
        .where(sql<boolean>`not (${region} = any(replicated_regions))`)
        .executeTakeFirst();
      return Number(r.numUpdatedRows);
    },

    missingVariants(after, limit, homeRegion) {
      // Rides on the partial index images_variants_missing.
      let q = liveRows().where('variants_of', 'is', null);
      if (homeRegion !== undefined) q = q.where('home_region', '=', homeRegion);
      return oldestAfter(q, after, limit);
    },

    async addVariantReady(id, variantKey) {
      const r = await k
        .updateTable('images')
        .set({
          variants_ready: sql<string[]>`case when ${variantKey} = any(variants_ready) then variants_ready
            else array_append(variants_ready, ${variantKey}::text) end`,
        })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    async setVariantsOf(id, tag) {
      await k
        .updateTable('images')
        .set({ variants_of: tag })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .execute();
    },

    prepareAnimationWorkList(o) {
      return ensureWorkListIndex(db, ANIMATION_UNKNOWN_INDEX, o);
    },

    animationUnknown(after, limit) {
      // Rides on the partial index images_animation_unknown (ANIMATION_UNKNOWN_INDEX): its
      // predicate, word for word (a literal list, not parameters, so the planner can match it).
      const q = liveRows()
        .where('animated', 'is', null)
        .where(sql<boolean>`content_type in ('image/webp', 'image/png', 'image/avif')`);
      return oldestAfter(q, after, limit);
    },

    async recordAnimation(id, animated) {
      const r = await k
        .updateTable('images')
        .set({ animated })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .where((eb) =>
          animated
            ? eb.or([eb('animated', 'is', null), eb('animated', '=', false)])
            : eb('animated', 'is', null),
        )
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    prepareDeletedWorkList(o) {
      return ensureWorkListIndex(db, DELETED_ROWS_INDEX, o);
    },

    async purgeDeleted(before, limit) {
      // Rides on the partial index images_deleted (DELETED_ROWS_INDEX): its predicate, word for word.
      const r = await sql`
        delete from images where id in (
          select id from images where deleted_at is not null and deleted_at < ${before}
          order by deleted_at, id limit ${limit})`.execute(k);
      return Number(r.numAffectedRows ?? 0);
    },

    async ownerLiveRows(ownerId, limit) {
      // The page index (owner_id, created_at desc, id desc) of live rows.
      const rows = await liveRows()
        .where('owner_id', '=', ownerId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toImageRow);
    },

    async ownerDeletedRows(ownerId, limit) {
      const rows = await k
        .selectFrom('images')
        .select(['id', 'object_key', 'deleted_at'])
        .where('deleted_at', 'is not', null)
        .where('owner_id', '=', ownerId)
        .orderBy('deleted_at', 'asc')
        .orderBy('id', 'asc')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ id: r.id, objectKey: r.object_key, deletedAt: r.deleted_at! }));
    },

    async ownerCounts(ownerId) {
      const r = await k
        .selectFrom('images')
        .select([
          sql<string>`count(*) filter (where deleted_at is null)`.as('live'),
          sql<string>`count(*) filter (where deleted_at is not null)`.as('deleted'),
        ])
        .where('owner_id', '=', ownerId)
        .executeTakeFirst();
      return { live: Number(r?.live ?? 0), deleted: Number(r?.deleted ?? 0) };
    },

    async removeDeleted(ownerId, ids) {
      if (ids.length === 0) return 0;
      const r = await k
        .deleteFrom('images')
        .where('id', 'in', ids as string[])
        .where('owner_id', '=', ownerId)
        .where('deleted_at', 'is not', null)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },

    async liveRowsByKey(after, limit, ownerId) {
      // The unique index on object_key, in its own order (the interface says why not byte order).
      let q = k
        .selectFrom('images')
        .select(['id', 'owner_id', 'object_key', 'created_at'])
        .where('deleted_at', 'is', null);
      if (ownerId !== undefined) q = q.where('owner_id', '=', ownerId);
      if (after !== undefined) q = q.where('object_key', '>', after);
      const rows = await q.orderBy('object_key').limit(limit).execute();
      return rows.map((r) => ({
        id: r.id,
        ownerId: r.owner_id,
        objectKey: r.object_key,
        createdAt: r.created_at,
      }));
    },

    async resetVariantsOf(tag) {
      const r = await k
        .updateTable('images')
        .set({ variants_of: null })
        .where('variants_of', 'is not', null)
        .where('variants_of', '<>', tag)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows);
    },
  };
}
