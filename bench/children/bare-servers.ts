// References for scenarios 6 and 7: bare node:http servers doing the least the product must do.
//   /r, or any path   a constant 302 (the target's reference; scenario 6 sends it the proxy's
//                     own requests, so the load generator's work is the same)
//   /redis/<id>       one Redis GET, then a 302 (the least any cached redirect costs)
//   /sql-redis/<id>   one indexed SQL lookup and one Redis GET, then a 302 (the proxy's own I/O)
//   /relay/<path>     the object fetched from the fixture and piped through (the least a
//                     streaming proxy costs)
import http, { createServer } from 'node:http';
import { Redis } from 'ioredis';
import pg from 'pg';
import { GATEWAY_KEYS as k } from '../lib/config.js';

const location = process.env.REDIRECT_LOCATION ?? 'http://127.0.0.1/object';
const relayOrigin = new URL(process.env.RELAY_ORIGIN ?? 'http://127.0.0.1:9');
const redis = process.env.REDIS_URL ? new Redis(process.env.REDIS_URL) : undefined;
const pool = process.env.DATABASE_URL
  ? new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
  : undefined;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function redirect(res: http.ServerResponse): void {
  res.writeHead(302, { location, 'cache-control': 'private, max-age=3000', 'content-length': 0 });
  res.end();
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/redis/') && redis) {
    redis.get(k.url(url.slice(7)), () => redirect(res));
  } else if (url.startsWith('/sql-redis/') && redis && pool) {
    const id = url.slice(11);
    pool
      .query('select object_key, owner_id from images where id = $1 and deleted_at is null', [id])
      .then(() => redis.get(k.url(id)))
      .then(() => redirect(res))
      .catch(() => res.writeHead(500).end());
  } else if (url.startsWith('/relay/')) {
    const up = http.get(
      { host: relayOrigin.hostname, port: relayOrigin.port, path: url.slice(6), agent },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, {
          'content-length': upstream.headers['content-length'] ?? '0',
          'content-type': upstream.headers['content-type'] ?? 'application/octet-stream',
        });
        upstream.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
  } else {
    redirect(res);
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
