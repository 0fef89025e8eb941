// The COS-compatible fixture server in a process of its own, so serving objects does not share
// the load generator's or the coordinator's event loop. Objects are put straight into its map.
import { createHash } from 'node:crypto';
import { type CosFixture, startCosFixture } from '../../server/test/fixtures/cos-fixture.js';
import { serve } from '../lib/rpc.js';

let fixture: CosFixture | undefined;

function need(): CosFixture {
  if (!fixture) throw new Error('fixture not started');
  return fixture;
}

serve({
  async start(p: { secretId: string; secretKey: string }) {
    fixture = await startCosFixture({ secretId: p.secretId, secretKey: p.secretKey });
    // The fixture logs every request; the benchmark sends hundreds of thousands.
    setInterval(() => {
      need().requests.log.length = 0;
    }, 1000).unref();
    return { port: fixture.port, host: fixture.host };
  },

  /** Keys `${prefix}${i}${suffix}` for i in [from, to], all with the same small body. */
  seedRange(p: {
    prefix: string;
    suffix: string;
    from: number;
    to: number;
    bodyBase64: string;
    contentType: string;
  }) {
    const f = need();
    const body = Buffer.from(p.bodyBase64, 'base64');
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    const lastModified = new Date();
    for (let i = p.from; i <= p.to; i++) {
      f.objects.set(`${p.prefix}${i}${p.suffix}`, { body, contentType: p.contentType, etag, lastModified });
    }
    return { etag, count: p.to - p.from + 1 };
  },

  /** Large objects with a deterministic body; returns their ETag. */
  seedLarge(p: { keys: string[]; bytes: number; contentType: string }) {
    const f = need();
    const body = Buffer.alloc(p.bytes);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    const lastModified = new Date();
    for (const key of p.keys) f.objects.set(key, { body, contentType: p.contentType, etag, lastModified });
    return { etag };
  },

  stats() {
    const f = need();
    return {
      requests: f.requests.total,
      signatureChecks: f.signatureChecks,
      signatureFailures: f.signatureFailures,
      objects: f.objects.size,
    };
  },

  async close() {
    await fixture?.close();
    return true;
  },
});
