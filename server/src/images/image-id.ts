import { badInput } from '../errors/index.js';

/**
 * Image ids are UUIDs, parsed in one place for GraphQL arguments and REST paths alike. A
 * fixed-length pattern with no nested quantifiers: linear on any input.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Most ids one request may name (imagesByIds, refreshSignedUrls, subscriptions). */
export const MAX_IDS = 500;

export function isImageId(id: string): boolean {
  return UUID.test(id);
}

/** An id in canonical (lower-case) form; anything else is the client's mistake, not a missing image. */
export function parseImageId(id: string, arg = 'id'): string {
  if (typeof id !== 'string' || !UUID.test(id)) {
    throw badInput(`${arg} must be an image id (a UUID), got ${JSON.stringify(String(id).slice(0, 64))}`, {
      argument: arg,
    });
  }
  return id.toLowerCase();
}

export function parseImageIds(ids: readonly string[], arg = 'ids', max = MAX_IDS): string[] {
  if (ids.length > max)
    throw badInput(`${arg} takes at most ${max} ids, got ${ids.length}`, { argument: arg });
  return ids.map((id) => parseImageId(id, arg));
}
