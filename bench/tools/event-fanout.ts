// Micro-measure: what one batch of URL events (a cold page's 100 cos URLs) costs Redis and the
// nodes that hear it, in each wire form (server/src/events/event-bus.ts): one publisher and N
// subscriber connections on a private redis-server, 2,000 batches per form, twice.
// `npx tsx bench/tools/event-fanout.ts [subscribers]`. The subscribers only receive (ioredis'
// parser and its string per message), as a node with listeners does before it decodes.
import { Redis } from 'ioredis';
import { encodeEvents, type SignedUrlEvent } from '../../server/src/events/event-bus.js';
import { createCosStorage } from '../../server/src/storage/cos.js';
import { encodeSignature } from '../../server/src/urls/store.js';
import { BenchRedis } from '../lib/redis.js';

const subscribers = Number(process.argv[2] ?? 8);
const batches = 2000;
const storage = createCosStorage({
  secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
  secretKey: 'bench-secret-key',
  bucket: 'photos-1250000000',
  region: 'ap-guangzhou',
  protocol: 'https:',
});
const window = { start: 1_800_000_000, end: 1_800_003_660 };
const page: SignedUrlEvent[] = Array.from({ length: 100 }, () => {
  const id = crypto.randomUUID();
  const key = `u/bench/${id}.jpg`;
  const sig = {
    start: window.start,
    end: window.end,
    sig: storage.signMany([key], window)[0]!,
    by: storage.signedBy,
  };
  const expiresAt = window.end * 1000;
  return {
    imageId: id,
    signedUrl: { url: storage.urlFor(key, sig), expiresAt, refreshAt: expiresAt - 900_000, cached: false },
    objectKey: key,
    signature: encodeSignature(sig),
  };
});
const forms = {
  'URL form': encodeEvents(page.map((e) => ({ imageId: e.imageId, signedUrl: e.signedUrl }))),
  compact: encodeEvents(page),
};

const server = await BenchRedis.start();
const publisher = new Redis(server.url);
const subs = Array.from({ length: subscribers }, () => new Redis(server.url));
try {
  let heard = 0;
  for (const sub of subs) {
    sub.on('message', () => {
      heard++;
    });
    await sub.subscribe('events');
  }
  const redisCpu = async () => {
    const info = await publisher.info('cpu');
    const of = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)![1]);
    return (of('used_cpu_user') + of('used_cpu_sys')) * 1e6;
  };
  for (let round = 0; round < 2; round++) {
    for (const [name, message] of Object.entries(forms)) {
      heard = 0;
      const redis0 = await redisCpu();
      const own0 = process.cpuUsage();
      for (let i = 0; i < batches; i++) await publisher.publish('events', message);
      while (heard < batches * subscribers) await new Promise((r) => setTimeout(r, 5));
      const own = process.cpuUsage(own0);
      const redis = (await redisCpu()) - redis0;
      process.stdout.write(
        `round ${round}, ${name} (${message.length} bytes), ${subscribers} subscriber(s): Redis ` +
          `${(redis / batches).toFixed(0)} µs per batch; publisher and subscribers ` +
          `${((own.user + own.system) / batches).toFixed(0)} µs per batch\n`,
      );
    }
  }
} finally {
  publisher.disconnect();
  for (const sub of subs) sub.disconnect();
  await server.stop();
}
