import type { ColumnType, Generated, Kysely, Selectable } from 'kysely';

/** Who may read an image by id: its owner and admins (private), or every viewer (public). */
export type ImageVisibility = 'private' | 'public';

export interface ImagesTable {
  id: Generated<string>;
  owner_id: string;
  object_key: string;
  content_type: string;
  // pg returns bigint as a string; the repository turns it into a number.
  byte_size: ColumnType<string | number, number, number>;
  width: number | null;
  height: number | null;
  etag: string | null;
  visibility: ColumnType<ImageVisibility, ImageVisibility | undefined, ImageVisibility>;
  /** ThumbHash (base64); null until computed, '' when the object could not be decoded. */
  placeholder: ColumnType<string | null, string | null | undefined, string | null>;
  /** The region whose bucket the upload went to; null with one region. */
  home_region: ColumnType<string | null, string | null | undefined, string | null>;
  /** Regions whose bucket the replication check has seen the object in. */
  replicated_regions: ColumnType<string[], string[] | undefined, string[]>;
  /** Variant keys whose derived objects exist (`s3`; docs/architecture.md, "Variants on s3"). */
  variants_ready: ColumnType<string[], string[] | undefined, string[]>;
  /** The preset set the derived objects were made for (`presetsTag`); null: not yet. */
  variants_of: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * An animated WebP, APNG or AVIF sequence (true), or not (false); null: not looked at yet (rows
   * from before migration 006, or written by a node of an earlier version, until the backfill
   * reads their head). No default: every insert of this version names it.
   */
  animated: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  created_at: ColumnType<Date, Date | undefined, never>;
  deleted_at: ColumnType<Date | null, never, Date | null>;
}

/** Small named values kept beside the rows (`db/state-repo.ts`). */
export interface SignetStateTable {
  key: string;
  value: string;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface Database {
  images: ImagesTable;
  signet_state: SignetStateTable;
}

export type ImageRowRaw = Selectable<ImagesTable>;

/** An image as the rest of the server sees it. */
export interface ImageRow {
  id: string;
  ownerId: string;
  objectKey: string;
  contentType: string;
  byteSize: number;
  width: number | null;
  height: number | null;
  etag: string | null;
  visibility: ImageVisibility;
  /** ThumbHash (base64); null until computed, '' when the object could not be decoded. */
  placeholder: string | null;
  /** The region whose bucket the upload went to; null with one region (docs/operations.md). */
  homeRegion: string | null;
  /** Regions whose bucket the replication check has seen the object in. */
  replicatedRegions: string[];
  /** Variant keys whose derived objects exist (only on `s3`; empty elsewhere). */
  variantsReady: string[];
  /**
   * The original is an animated WebP, APNG or AVIF sequence: its variants are the original, as a
   * GIF's are (docs/architecture.md, "Variants"). False for a still, and for every other type (a
   * GIF or SVG is handed out whole by its type, whatever this says); null: not looked at yet.
   */
  animated: boolean | null;
  createdAt: Date;
}

/** An open database (db/connect.ts opens one): PostgreSQL through a pool, or embedded PGlite. */
export interface Db {
  readonly kind: 'postgres' | 'pglite';
  readonly kysely: Kysely<Database>;
  /**
   * PostgreSQL: where to open a connection of one's own, outside the pool (what needs a session
   * of its own and no statement timeout: db/work-list-indexes.ts).
   */
  readonly connectionString?: string;
  /**
   * One statement on a connection of its own. PostgreSQL answers with its clock
   * (`clock_timestamp()`, epoch ms) in the same statement, so every probe round also measures
   * this node's clock against the one every node shares (lib/clock-offset.ts); PGlite runs in
   * this process, on this clock: undefined.
   */
  ping(): Promise<number | undefined>;
  close(): Promise<void>;
}
