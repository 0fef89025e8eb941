import { sql } from 'kysely';
import { fromDatabase } from '../errors/index.js';
import type { Db } from './types.js';

/**
 * Small named values the server keeps in its database beside the rows (table `signet_state`,
 * migration 008). Always the primary: a value read here decides what a worker may delete.
 */
export interface StateRepo {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

export function createStateRepo(db: Pick<Db, 'kysely'>): StateRepo {
  const k = db.kysely;
  return {
    async get(key) {
      try {
        const row = await k
          .selectFrom('signet_state')
          .select('value')
          .where('key', '=', key)
          .executeTakeFirst();
        return row?.value;
      } catch (err) {
        throw fromDatabase(err) ?? err;
      }
    },
    async set(key, value) {
      try {
        await k
          .insertInto('signet_state')
          .values({ key, value, updated_at: sql<Date>`now()` })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: sql<Date>`now()` }))
          .execute();
      } catch (err) {
        throw fromDatabase(err) ?? err;
      }
    },
  };
}
