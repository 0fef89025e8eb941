import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { RECENT_ROW_MS, RecentRows } from './recent-rows.js';
import type { ImageRow } from './types.js';

const row = (id: string): ImageRow =>
  ({ id, ownerId: 'alice', objectKey: `u/alice/${id}.png`, contentType: 'image/png' }) as ImageRow;

/** A table of live rows that counts its lookups (the SQL itself is tested in proxy-tokens.test). */
function table() {
  const live = new Map<string, ImageRow>();
  const lookups: string[] = [];
  const images = {
    findLive: async (ids: readonly string[]) => {
      lookups.push(...ids);
      return ids.flatMap((id) => (live.has(id) ? [live.get(id)!] : []));
    },
  };
  return { live, lookups, images };
}

describe('RecentRows', () => {
  it('answers a known row from memory for RECENT_ROW_MS, then asks again', async () => {
    const clock = new FakeClock();
    const t = table();
    t.live.set('a', row('a'));
    const rows = new RecentRows(t.images, clock);
    for (let i = 0; i < 100; i++) expect((await rows.find('a'))?.id).toBe('a');
    expect(t.lookups).toEqual(['a']);
    clock.advance(RECENT_ROW_MS);
    await rows.find('a');
    expect(t.lookups).toEqual(['a', 'a']);
  });

  it('never remembers a miss: an image that appears is found at once', async () => {
    const t = table();
    const rows = new RecentRows(t.images, new FakeClock());
    expect(await rows.find('b')).toBeUndefined();
    t.live.set('b', row('b'));
    expect((await rows.find('b'))?.id).toBe('b');
  });

  it('forget() drops a row at once (a delete on this node)', async () => {
    const t = table();
    t.live.set('c', row('c'));
    const rows = new RecentRows(t.images, new FakeClock());
    await rows.find('c');
    t.live.delete('c');
    rows.forget('c');
    expect(await rows.find('c')).toBeUndefined();
  });
});
