import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createStaticRoute } from '../../../server/src/http/static-app.js';

/**
 * A built single-page app (e.g. examples/vue-apollo/dist) on its own origin, the way a host app
 * is served apart from the gateway: its GraphQL requests are then cross-origin, as in production.
 * Files are served by the gateway's own static route (index.html for unknown paths).
 */
export class StaticSite {
  private constructor(private readonly server: Server) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  static async start(root: string): Promise<StaticSite> {
    if (!existsSync(path.join(root, 'index.html'))) {
      throw new Error(`${root} has no index.html: run \`npm run build\` (npm run test:e2e does)`);
    }
    const route = createStaticRoute(root);
    const server = createServer((req, res) => {
      route(req, res, new URL(req.url ?? '/', 'http://site.invalid')).catch(() => {
        res.statusCode = 500;
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return new StaticSite(server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
