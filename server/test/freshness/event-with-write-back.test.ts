import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { SignedUrlEvent } from '../../src/events/event-bus.js';
import { RedisEventBus } from '../../src/events/redis-bus.js';
import { createMetrics } from '../../src/metrics.js';
import { createRedisClient, type RedisClient } from '../../src/redis/connect.js';
import { type SendTogether, sendAsIs, sendTogether } from '../../src/redis/send-together.js';
import { createLocalStorage } from '../../src/storage/local.js';
import { eventUrlOf } from '../../src/urls/event-urls.js';
import { RedisUrlStore } from '../../src/urls/redis-store.js';
import { createUrlPath } from '../../src/urls/url-path.js';
import type { UrlService } from '../../src/urls/url-service.js';
import { redisReady, testRedisUrl } from '../support/env.js';
import { captureLogger } from '../support/logs.js';

/**
 * What a socket was handed to send, one string per `_write` (one chunk) or `_writev` (everything
 * buffered, e.g. while corked): each is one write request to libuv, which the kernel may still
 * send in pieces.
 */
function recordWrites(socket: Socket): { writes: string[]; stop(): void } {
  const writes: string[] = [];
  const s = socket as unknown as {
    _write: (chunk: unknown, encoding: string, cb: (err?: Error) => void) => void;
    _writev: (chunks: { chunk: unknown }[], cb: (err?: Error) => void) => void;
  };
  const write = s._write;
  const writev = s._writev;
  s._write = function (chunk, encoding, cb) {
    writes.push(String(chunk));
    return write.call(this, chunk, encoding, cb);
  };
  s._writev = function (chunks, cb) {
    writes.push(chunks.map((c) => String(c.chunk)).join(''));
    return writev.call(this, chunks, cb);
  };
  return {
    writes,
    stop() {
      s._write = write;
      s._writev = writev;
    },
  };
}

/** RESP spells each command name as a bulk string of its own: `$7\r\nevalsha\r\n`. */
const count = (text: string, command: RegExp) => (text.match(command) ?? []).length;
const PUBLISH = /\r\npublish\r\n/gi;
const SCRIPT = /\r\neval(sha)?\r\n/gi;

// A signing's write-back and its refresh event, sent to a real Redis through the product's URL
// path and event bus: the bytes each socket write carried, read at the socket.
describe('a signing announces its step ahead of storing it, in the same socket write', () => {
  let dir: string;
  let command: RedisClient;
  let subscriber: Redis;
  let events: RedisEventBus;
  let storage: ReturnType<typeof createLocalStorage>;
  const prefix = `signet-test:one-write:${process.pid}:`;
  let n = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'signet-one-write-'));
    command = createRedisClient({ url: testRedisUrl(), clusterNodes: [], commandTimeoutMs: 2000 });
    command.on('error', () => {});
    // No offline queue (as in the product): commands wait for the connection here.
    await redisReady(command);
    subscriber = new Redis(testRedisUrl());
    storage = createLocalStorage({
      root: path.join(dir, 'bucket'),
      publicUrl: 'http://gw.test',
      secret: 'one-write-secret-one-write-secret',
    });
    events = new RedisEventBus(
      command,
      subscriber,
      `${prefix}events`,
      captureLogger().logger,
      eventUrlOf({ storage, regions: new Map(), refreshAheadSeconds: 900 }),
    );
    await events.whenReady();
  });

  afterAll(async () => {
    const keys = (await command?.keys(`${prefix}*`)) ?? [];
    if (keys.length > 0) await command.del(...keys);
    await events?.close();
    command?.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  /** The product's URL path over this Redis, and the ids of a fresh page of three images. */
  function setup(together: SendTogether) {
    const { logger } = captureLogger();
    const { urls } = createUrlPath({
      storage,
      store: new RedisUrlStore(command, prefix, 4000),
      events,
      metrics: createMetrics(),
      clock: systemClock,
      logger,
      timing: { urlTtlSeconds: 3600, refreshAheadSeconds: 900, defaultMinTtlSeconds: 300 },
      sendTogether: together,
    });
    const ids = [1, 2, 3].map(() => `img-${++n}`);
    return { urls, ids, targets: ids.map((id) => ({ id, key: `u/alice/${id}.png` })) };
  }

  /** Runs `sign`, waits for its events on the bus, and returns what each socket write carried. */
  async function writesOf(ids: string[], sign: () => Promise<unknown>): Promise<string[]> {
    const heard: SignedUrlEvent[] = [];
    const unsubscribe = events.subscribe(ids, (e) => heard.push(e));
    const socket = (command as Redis).stream as Socket;
    const recorder = recordWrites(socket);
    try {
      await sign();
      const deadline = Date.now() + 5000;
      while (heard.length < ids.length) {
        if (Date.now() > deadline) throw new Error(`${heard.length} of ${ids.length} events arrived`);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(new Set(heard.map((e) => e.imageId))).toEqual(new Set(ids));
      return recorder.writes;
    } finally {
      recorder.stop();
      unsubscribe();
    }
  }

  /**
   * The one write that carried the event, and how many script calls (the write-back's) rode with
   * it. Whichever writes they went in, the event came first on the connection: Redis runs one
   * connection's commands in order, so the step it stores was announced before.
   */
  function withTheEvent(writes: string[]): { scripts: number } {
    const carrying = writes.filter((w) => count(w, PUBLISH) > 0);
    expect(carrying).toHaveLength(1);
    expect(count(carrying[0]!, PUBLISH)).toBe(1);
    const wire = writes.join('');
    expect(count(wire, SCRIPT)).toBe(1);
    expect(wire.search(PUBLISH)).toBeLessThan(wire.search(SCRIPT));
    return { scripts: count(carrying[0]!, SCRIPT) };
  }

  const miss = (urls: UrlService, targets: { id: string; key: string }[]) => () =>
    urls.resolveMany(targets.map((t) => ({ ...t, minTtl: 300 })));
  const sweep = (urls: UrlService, targets: { id: string; key: string }[]) => () =>
    urls.refreshMany(targets, { strict: true });

  it('a page that missed: the event, then the write-back (URLs and schedule), in one write', async () => {
    const { urls, ids, targets } = setup(sendTogether(command));
    const writes = await writesOf(ids, miss(urls, targets));
    // The write-back's one script call (the URLs and their schedule), with the PUBLISH.
    expect(withTheEvent(writes).scripts).toBe(1);
  });

  it('a refresh sweep (strict): the same', async () => {
    const { urls, ids, targets } = setup(sendTogether(command));
    const writes = await writesOf(ids, sweep(urls, targets));
    expect(withTheEvent(writes).scripts).toBe(1);
  });

  it('sent as they come, the event leaves in a write of its own: the recorder tells them apart', async () => {
    const { urls, ids, targets } = setup(sendAsIs);
    expect(withTheEvent(await writesOf(ids, miss(urls, targets))).scripts).toBe(0);
    const more = setup(sendAsIs);
    expect(withTheEvent(await writesOf(more.ids, sweep(more.urls, more.targets))).scripts).toBe(0);
  });
});
