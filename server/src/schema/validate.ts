import type { Config } from '../config.js';
import type { Cursor } from '../db/images-repo.js';
import { badInput } from '../errors/index.js';
import { isImageId } from '../images/image-id.js';

export const MAX_PAGE_SIZE = 100;

export function parseFirst(first: number | null | undefined): number {
  const n = first ?? 24;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}, got ${n}`, { argument: 'first' });
  }
  return n;
}

/** minTtl defaults to 300 s (or a quarter of the TTL) and must leave room in a URL's life. */
export function parseMinTtl(
  minTtl: number | null | undefined,
  config: Pick<Config, 'urlTtlSeconds' | 'defaultMinTtlSeconds'>,
): number {
  if (minTtl === null || minTtl === undefined) return config.defaultMinTtlSeconds;
  const max = config.urlTtlSeconds - 1;
  if (!Number.isInteger(minTtl) || minTtl < 0 || minTtl > max) {
    throw badInput(`minTtl must be between 0 and ${max} seconds (URL_TTL_SECONDS - 1), got ${minTtl}`, {
      argument: 'minTtl',
    });
  }
  return minTtl;
}

/** Opaque cursor: base64url of `<created_at ms>:<id>`. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.createdAt.getTime()}:${c.id}`).toString('base64url');
}

export function decodeCursor(after: string | null | undefined): Cursor | undefined {
  if (after === null || after === undefined) return undefined;
  const raw = after.length <= 128 ? Buffer.from(after, 'base64url').toString('utf8') : '';
  const m = /^(\d{1,15}):([0-9a-f-]{36})$/i.exec(raw);
  if (!m || !isImageId(m[2]!))
    throw badInput('after is not a cursor returned by this API', { argument: 'after' });
  return { createdAt: new Date(Number(m[1])), id: m[2]!.toLowerCase() };
}
