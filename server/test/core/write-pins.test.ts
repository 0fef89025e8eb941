import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WritePins } from '../../src/db/write-pins.js';
import { decodeWritePins, encodeWritePins } from '../../src/events/event-bus.js';
import { RedisEventBus } from '../../src/events/redis-bus.js';
import { redisReady } from '../support/env.js';
import { captureLogger } from '../support/logs.js';
import { waitFor } from '../support/proxy.js';
import { commandStats, OwnedRedis } from '../support/redis-server.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** These tests publish write pins only: no URL event reaches a node to build. */
const noUrlEvents = () => undefined;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('the wire form of write pins', () => {
  it('is a list of [viewer, ms], read back as it was written; anything else in it is left out', () => {
    expect(encodeWritePins([{ viewer: 'alice', forMs: 5500 }])).toBe('[["alice",5500]]');
    expect(
      decodeWritePins(
        encodeWritePins([
          { viewer: 'a', forMs: 1 },
          { viewer: 'b', forMs: 2 },
        ]),
      ),
    ).toEqual([
      { viewer: 'a', forMs: 1 },
      { viewer: 'b', forMs: 2 },
    ]);
    expect(
      decodeWritePins('[["a", 10], ["b"], ["c", -1], ["d", "10"], [1, 10], "e", ["f", 1e999], ["g", 20]]'),
    ).toEqual([
      { viewer: 'a', forMs: 10 },
      { viewer: 'g', forMs: 20 },
    ]);
    expect(decodeWritePins('{"v":2,"e":["a"]}')).toEqual([]);
    expect(() => decodeWritePins('not json')).toThrow();
  });
});

// Read-your-own-writes across gateways: a pin set by the node that took the write reaches, over
// the event bus (a real Redis this file owns, so INFO commandstats counts only its commands), the
// node that takes the writer's next request, which then answers `pinned` from memory: no Redis
// command per read.
describe('write pins shared over the event bus (real Redis)', () => {
  const channel = `signet-test:write-pins:${randomBytes(4).toString('hex')}:events`;
  const connections: Redis[] = [];
  const buses: RedisEventBus[] = [];
  const workers = new Set<RedisEventBus>();
  let redis: OwnedRedis;
  const connect = (url = redis.url) => {
    const c = new Redis(url, { maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    connections.push(c);
    return c;
  };
  const { logger, logs } = captureLogger();
  let command: Redis;

  /** A node's bus; `worker`: SIGNET_ROLE=worker (serves no page). */
  async function bus(o: { worker?: boolean; publisher?: Redis } = {}): Promise<RedisEventBus> {
    const b = new RedisEventBus(o.publisher ?? command, connect(), channel, logger, noUrlEvents, !o.worker);
    buses.push(b);
    if (o.worker) workers.add(b);
    await b.whenReady();
    return b;
  }
  const node = async (pinMs: number, events?: RedisEventBus) =>
    new WritePins({ pinMs, bus: { events: events ?? (await bus()), timeoutMs: 300 }, logger });

  beforeAll(async () => {
    redis = await OwnedRedis.start();
    command = connect();
    await redisReady(command);
  });
  afterAll(async () => {
    for (const b of buses) await b.close();
    for (const c of connections) c.disconnect();
    await redis?.kill();
  });

  it('a pin set on one node holds on another for pinMs, then lapses; reads of pins send no command', async () => {
    const nodeA = await node(600);
    const nodeB = await node(600);
    // What goes over the wire, as a subscriber of the test's own hears it.
    const heard: string[] = [];
    const listener = connect();
    listener.on('message', (_ch: string, m: string) => heard.push(m));
    await listener.subscribe(`${channel}:pins`);

    await command.config('RESETSTAT');
    await nodeA.pin('alice');
    expect(nodeA.pinned('alice')).toBe(true);
    await waitFor(() => nodeB.pinned('alice') === true, 1000);
    expect(nodeB.pinned('bob')).toBe(false);
    for (let i = 0; i < 50; i++) expect(nodeB.pinned('alice') && !nodeB.pinned('carol')).toBe(true);
    await waitFor(() => heard.length === 1, 1000);
    expect(heard).toEqual(['[["alice",600]]']);
    // One PUBLISH for the pin, and not a command for the 100+ lookups (nor a key left behind).
    const stats = await commandStats(command);
    delete stats['config|resetstat'];
    delete stats['info'];
    expect(stats).toEqual({ publish: 1 });
    expect(await command.dbsize()).toBe(0);
    await listener.unsubscribe();

    await sleep(700);
    expect(nodeA.pinned('alice')).toBe(false);
    expect(nodeB.pinned('alice')).toBe(false);
  });

  it('a worker publishes the pins of its writes and hears none; a node started after a pin misses it', async () => {
    const worker = await node(2000, await bus({ worker: true }));
    const api = await node(2000);
    await worker.pin('dave');
    expect(worker.pinned('dave')).toBe(true);
    await waitFor(() => api.pinned('dave'), 1000);
    // The worker's bus does not subscribe to pins (it serves no page): Redis sends it none.
    const [, subscribers] = (await command.pubsub('NUMSUB', `${channel}:pins`)) as [string, number];
    expect(Number(subscribers)).toBe(buses.length - workers.size);
    const later = await node(2000);
    await api.pin('erin');
    await waitFor(() => later.pinned('erin'), 1000);
    expect(worker.pinned('erin')).toBe(false);
    // Started after dave's pin went out: pub/sub keeps nothing (bounded by pinMs, documented).
    expect(later.pinned('dave')).toBe(false);
  });

  it("a pin that cannot be published in time still pins the writer's node, and says so once", async () => {
    // A Redis that takes the PUBLISH and never answers (as a frozen one would).
    const frozen = await TcpProxy.start('127.0.0.1', redis.port);
    frozen.withhold(':pins');
    try {
      const publisher = connect(`redis://127.0.0.1:${frozen.port}`);
      await redisReady(publisher);
      const writer = await node(2000, await bus({ publisher }));
      const other = await node(2000);
      const warnings = () => logs.filter((l) => l.includes('could not share a write pin')).length;
      const started = Date.now();
      await writer.pin('frank');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(writer.pinned('frank')).toBe(true);
      expect(warnings()).toBe(1);
      await writer.pin('grace');
      expect(writer.pinned('grace')).toBe(true);
      // Throttled: one line a minute, however many writes.
      expect(warnings()).toBe(1);
      await sleep(100);
      expect(other.pinned('frank')).toBe(false);
    } finally {
      await frozen.close();
    }
  });
});
