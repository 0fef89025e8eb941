import { sql } from 'kysely';
import type { Db } from './types.js';

/**
 * Small named values the server keeps in its database beside the rows (table `signet_state`,
 * migration 008). Always the primary: a value read here decides what a worker may delete. A
 * failure is the driver's error, as the images repository's are (callers map them: errors/).
 */
export interface StateRepo {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

export function createStateRepo(db: Pick<Db, 'kysely'>): StateRepo {
  const k = db.kysely;
  return {
    async get(key) {
      const row = await k
        .selectFrom('signet_state')
        .select('value')
        .where('key', '=', key)
        .executeTakeFirst();
      return row?.value;
    },
    async set(key, value) {
      await k
        .insertInto('signet_state')
        .values({ key, value, updated_at: sql<Date>`now()` })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: sql<Date>`now()` }))
        .execute();
    },
  };
}
