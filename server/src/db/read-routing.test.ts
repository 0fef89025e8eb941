import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../events/memory-bus.js';
import type { ReplicaState } from './read-replica.js';
import { replicaReads } from './read-routing.js';
import type { Database } from './types.js';
import { WritePins } from './write-pins.js';

// Stand-ins for the two databases: the routing only passes one or the other to the read.
const primary = { name: 'primary' } as unknown as Kysely<Database>;
const replicaDb = { name: 'replica' } as unknown as Kysely<Database>;
const where = (k: Kysely<Database>) => Promise.resolve((k as unknown as { name: string }).name);

function setup(state: Partial<ReplicaState> = {}, events?: MemoryEventBus) {
  const replica = {
    kysely: replicaDb,
    state: { usable: true, lagMs: 0, reason: undefined, ...state } as ReplicaState,
    downs: [] as string[],
    markDown(err: Error) {
      this.downs.push(err.message);
      this.state = { usable: false, lagMs: Number.POSITIVE_INFINITY, reason: err.message };
    },
  };
  const pins = new WritePins({
    pinMs: 200,
    ...(events ? { bus: { events, timeoutMs: 100 } } : {}),
    logger: { warn: () => {} },
  });
  return { replica, pins, reads: replicaReads({ primary, replica, pins }) };
}

describe('replicaReads', () => {
  it('reads on the replica while it is usable, on the primary when it is not', async () => {
    const { reads, replica } = setup();
    expect(await reads.read('alice', where)).toBe('replica');
    expect(await reads.read(undefined, where)).toBe('replica');
    replica.state = { usable: false, lagMs: 9000, reason: 'behind' };
    expect(await reads.read('alice', where)).toBe('primary');
  });

  it("sends a writer's reads to the primary for the pin's time, and no one else's", async () => {
    const { reads } = setup();
    await reads.wrote('alice');
    expect(await reads.read('alice', where)).toBe('primary');
    expect(await reads.read('bob', where)).toBe('replica');
    expect(await reads.read(undefined, where)).toBe('replica');
    await new Promise((r) => setTimeout(r, 250));
    expect(await reads.read('alice', where)).toBe('replica');
  });

  it('chooses without I/O: the read starts in the same turn, pinned or not', async () => {
    const { reads } = setup();
    await reads.wrote('alice');
    for (const viewer of ['alice', 'bob', undefined]) {
      let started: string | undefined;
      const done = reads.read(viewer, (k) => {
        started = (k as unknown as { name: string }).name;
        return where(k);
      });
      // Nothing awaited before `run`: no round trip to look a pin up (one Redis command a page).
      expect(started).toBe(viewer === 'alice' ? 'primary' : 'replica');
      await done;
    }
    let started = false;
    const many = reads.readFor(['bob', 'alice'], (k) => {
      started = true;
      return where(k);
    });
    expect(started).toBe(true);
    expect(await many).toBe('primary');
  });

  it("sends a writer's reads to the primary on every node that heard the pin (the event bus)", async () => {
    const events = new MemoryEventBus();
    const nodeA = setup({}, events);
    const nodeB = setup({}, events);
    await nodeA.reads.wrote('alice');
    expect(await nodeB.reads.read('alice', where)).toBe('primary');
    expect(await nodeB.reads.readFor(['carol', 'alice'], where)).toBe('primary');
    expect(await nodeB.reads.read('bob', where)).toBe('replica');
    await new Promise((r) => setTimeout(r, 250));
    expect(await nodeB.reads.read('alice', where)).toBe('replica');
  });

  it('reads for several viewers at once on the primary when any of them has just written', async () => {
    const { reads } = setup();
    expect(await reads.readFor(['alice', 'bob'], where)).toBe('replica');
    expect(await reads.readFor([], where)).toBe('replica');
    await reads.wrote('bob');
    expect(await reads.readFor(['alice', 'bob'], where)).toBe('primary');
    expect(await reads.readFor(['alice', 'carol'], where)).toBe('replica');
  });

  it('runs a read again on the primary when the replica has gone away, and skips it from then on', async () => {
    const { reads, replica } = setup();
    const gone = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), { code: 'ECONNREFUSED' });
    const ran: string[] = [];
    const result = await reads.read('alice', async (k) => {
      const name = await where(k);
      ran.push(name);
      if (name === 'replica') throw gone;
      return name;
    });
    expect(result).toBe('primary');
    expect(ran).toEqual(['replica', 'primary']);
    expect(replica.downs).toHaveLength(1);
    expect(await reads.read('bob', where)).toBe('primary');
  });

  it('runs a read the standby cancelled for a conflict with recovery (40001) again on the primary, and keeps the replica', async () => {
    const { reads, replica } = setup();
    // As PostgreSQL words it on a hot standby.
    const conflict = Object.assign(new Error('canceling statement due to conflict with recovery'), {
      code: '40001',
      routine: 'ProcessInterrupts',
    });
    const ran: string[] = [];
    const result = await reads.read('alice', async (k) => {
      const name = await where(k);
      ran.push(name);
      if (name === 'replica') throw conflict;
      return name;
    });
    expect(result).toBe('primary');
    expect(ran).toEqual(['replica', 'primary']);
    expect(replica.downs).toEqual([]);
    expect(await reads.read('bob', where)).toBe('replica');
  });

  it('fails a bad statement as the primary would, without skipping the replica', async () => {
    const { reads, replica } = setup();
    const bad = Object.assign(new Error('column "nope" does not exist'), { code: '42703' });
    await expect(reads.read('alice', () => Promise.reject(bad))).rejects.toBe(bad);
    expect(replica.state.usable).toBe(true);
    // PostgreSQL's own protocol violation (too many bind parameters) is the client's bug too.
    const protocol = Object.assign(new Error('bind message supplies 4464 parameters'), {
      code: '08P01',
      routine: 'exec_bind_message',
    });
    await expect(reads.read('alice', () => Promise.reject(protocol))).rejects.toBe(protocol);
    expect(replica.state.usable).toBe(true);
  });
});
