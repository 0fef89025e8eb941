import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { LOOKUP_BATCH, RECENT_ROW_MS, RecentRows } from './recent-rows.js';
import type { ImageRow } from './types.js';

const row = (id: string): ImageRow =>
  ({ id, ownerId: 'alice', objectKey: `u/alice/${id}.png`, contentType: 'image/png' }) as ImageRow;

/** A table of live rows that counts its lookups (the SQL itself is tested in proxy-tokens.test). */
function table() {
  const live = new Map<string, ImageRow>();
  const lookups: string[] = [];
  /** The ids of each statement, in order. */
  const statements: string[][] = [];
  let failing: Error | undefined;
  const images = {
    findLive: async (ids: readonly string[]) => {
      statements.push([...ids]);
      lookups.push(...ids);
      // Read now, answered a turn later, as a database does: hits meanwhile find the lookup
      // pending, and a change meanwhile is not in the answer.
      const found = ids.flatMap((id) => (live.has(id) ? [live.get(id)!] : []));
      const failure = failing;
      await new Promise((r) => setImmediate(r));
      if (failure) throw failure;
      return found;
    },
  };
  return {
    live,
    lookups,
    statements,
    images,
    fail: (err: Error | undefined) => {
      failing = err;
    },
  };
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

  it('remembers a miss as long as a row: a hot link to a deleted image costs one lookup', async () => {
    // Safe because an id reaches a client only once its row is committed (ids are random): an id
    // the lookup did not find never becomes a row later.
    const clock = new FakeClock();
    const t = table();
    const rows = new RecentRows(t.images, clock);
    for (let i = 0; i < 100; i++) expect(await rows.find('b')).toBeUndefined();
    expect(t.lookups).toEqual(['b']);
    clock.advance(RECENT_ROW_MS);
    expect(await rows.find('b')).toBeUndefined();
    expect(t.lookups).toEqual(['b', 'b']);
    // A forget (an access change on the bus) drops the answer, absent or not.
    rows.forget('b');
    await rows.find('b');
    expect(t.lookups).toEqual(['b', 'b', 'b']);
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

  it('hits on an id being looked up share its lookup', async () => {
    const t = table();
    t.live.set('a', row('a'));
    const rows = new RecentRows(t.images, new FakeClock());
    const first = rows.find('a');
    // Later hits, in later turns, while the statement is out.
    await new Promise((r) => setImmediate(r));
    const later = [rows.find('a'), rows.find('a')];
    const found = await Promise.all([first, ...later]);
    expect(found.map((r) => r?.id)).toEqual(['a', 'a', 'a']);
    expect(t.statements).toEqual([['a']]);
  });

  it('the misses of one turn go out as one statement, in statements of at most LOOKUP_BATCH ids', async () => {
    const t = table();
    const ids = Array.from({ length: LOOKUP_BATCH + 3 }, (_, i) => `id${i}`);
    for (const id of ids) t.live.set(id, row(id));
    const rows = new RecentRows(t.images, new FakeClock());
    const found = await Promise.all(ids.map((id) => rows.find(id)));
    expect(found.map((r) => r?.id)).toEqual(ids);
    expect(t.statements.map((s) => s.length)).toEqual([LOOKUP_BATCH, 3]);
    // Each answer is remembered: no more statements.
    await Promise.all(ids.map((id) => rows.find(id)));
    expect(t.statements).toHaveLength(2);
  });

  it('a row forgotten while its lookup is out serves the waiting hits but is not remembered', async () => {
    const t = table();
    t.live.set('d', row('d'));
    const rows = new RecentRows(t.images, new FakeClock());
    const waiting = rows.find('d');
    // The statement has been read when the delete lands.
    await new Promise((r) => setImmediate(r));
    expect(t.statements).toEqual([['d']]);
    rows.forget('d');
    t.live.delete('d');
    // The lookup may have read the row before the change: the hits already waiting take it,
    // as they would have without the change; the next hit asks again and sees the delete.
    expect((await waiting)?.id).toBe('d');
    expect(await rows.find('d')).toBeUndefined();
    expect(t.lookups).toEqual(['d', 'd']);
  });

  it('looks an id up on the primary for primaryAfterForgetMs after forgetting it, then on the replica again', async () => {
    const clock = new FakeClock();
    const t = table();
    t.live.set('g', row('g'));
    const onPrimary: string[][] = [];
    const images = {
      findLive: (ids: readonly string[], opts?: { primary?: boolean }) => {
        if (opts?.primary) onPrimary.push([...ids]);
        return t.images.findLive(ids);
      },
    };
    const rows = new RecentRows(images, clock, { primaryAfterForgetMs: 7000 });
    await rows.find('g');
    expect(onPrimary).toEqual([]);
    rows.forget('g');
    await rows.find('g');
    expect(onPrimary).toEqual([['g']]);
    // Remembered for RECENT_ROW_MS, then asked for again: still within the window.
    clock.advance(RECENT_ROW_MS);
    await rows.find('g');
    expect(onPrimary).toEqual([['g'], ['g']]);
    // Past the window (and the remembered row's time): the replica has the change by now.
    clock.advance(RECENT_ROW_MS);
    await rows.find('g');
    expect(onPrimary).toHaveLength(2);
    expect(t.statements).toHaveLength(4);
    // Without a replica (the default 0) a forget changes nothing but the memory.
    const plain = new RecentRows(images, clock);
    plain.forget('g');
    await plain.find('g');
    expect(onPrimary).toHaveLength(2);
  });

  it('a failed lookup fails every hit waiting for it, and the next hit asks again', async () => {
    const t = table();
    t.live.set('e', row('e'));
    t.live.set('f', row('f'));
    const rows = new RecentRows(t.images, new FakeClock());
    t.fail(new Error('database down'));
    const settled = await Promise.allSettled([rows.find('e'), rows.find('e'), rows.find('f')]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(t.statements).toEqual([['e', 'f']]);
    t.fail(undefined);
    expect((await rows.find('e'))?.id).toBe('e');
    expect(t.statements).toEqual([['e', 'f'], ['e']]);
  });
});
