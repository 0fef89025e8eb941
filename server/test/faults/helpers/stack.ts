import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../../../src/clock.js';
import { openDatabase } from '../../../src/db/connect.js';
import { createImagesRepo } from '../../../src/db/images-repo.js';
import { seedImages } from '../../../src/seed.js';
import { createCosStorage } from '../../../src/storage/cos.js';
import { type CosFixture, startCosFixture } from '../../fixtures/cos-fixture.js';
import { createTestDatabase } from '../../support/database.js';
import { COS_CREDENTIALS, cosStorageOptions, gatewayEnv } from '../../support/env.js';
import { GatewayProcess } from '../../support/gateway-process.js';
import { signToken } from '../../support/jwt.js';

export interface StackOptions {
  /** A database the test owns (a private server); default: a fresh database on the test server. */
  databaseUrl?: string;
  redisUrl?: string;
  images?: number;
  env?: Record<string, string>;
}

/**
 * A production-shaped gateway as a child process (its own event loop, so the load measures it and
 * not the test runner; a crash shows as an exit) on PostgreSQL, Redis and the COS fixture, with
 * `images` PNGs seeded for alice.
 */
export class Stack {
  private readonly others: GatewayProcess[] = [];

  private constructor(
    readonly gateway: GatewayProcess,
    readonly fixture: CosFixture,
    readonly ids: string[],
    readonly token: string,
    readonly databaseUrl: string,
    readonly env: Record<string, string>,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /** Another node on the same database, Redis and origin (e.g. a worker), stopped by close(). */
  async spawn(env: Record<string, string>): Promise<GatewayProcess> {
    const node = await GatewayProcess.start({ ...this.env, ...env });
    this.others.push(node);
    return node;
  }

  get url(): string {
    return this.gateway.url;
  }

  static async start(o: StackOptions = {}): Promise<Stack> {
    const fixture = await startCosFixture(COS_CREDENTIALS);
    const own = o.databaseUrl ? undefined : await createTestDatabase();
    const databaseUrl = o.databaseUrl ?? own!.url;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'signet-faults-'));
    const db = await openDatabase({ databaseUrl, dataDir });
    let ids: string[];
    try {
      ids = await seedImages({
        storage: createCosStorage(cosStorageOptions(fixture)),
        images: createImagesRepo(db),
        clock: systemClock,
        ownerId: 'alice',
        count: o.images ?? 96,
        width: 16,
        height: 16,
      });
    } finally {
      await db.close();
    }
    const env: Record<string, string> = {
      DATA_DIR: dataDir,
      ...gatewayEnv(fixture, databaseUrl),
      ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
      SEED_DEMO: 'false',
      LOG_LEVEL: 'warn',
      ...o.env,
    };
    const gateway = await GatewayProcess.start(env);
    const token = await signToken('alice');
    const stack: Stack = new Stack(gateway, fixture, ids, token, databaseUrl, env, async () => {
      await Promise.all([gateway, ...stack.others].map((g) => g.stop()));
      await fixture.close();
      await own?.drop();
      await rm(dataDir, { recursive: true, force: true });
    });
    return stack;
  }

  /** True while the gateway process that started is still running (no crash, no restart). */
  alive(): boolean {
    return this.gateway.child.exitCode === null && this.gateway.child.signalCode === null;
  }

  /** Log lines of the gateway at error level or that report a masked 500. */
  errorLogs(): string[] {
    return this.gateway.output
      .join('')
      .split('\n')
      .filter((l) => /"level":(50|60)|unexpected error|unhandled/.test(l));
  }

  close(): Promise<void> {
    return this.cleanup();
  }
}
