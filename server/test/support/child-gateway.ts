import type { CosFixture } from '../fixtures/cos-fixture.js';
import { GatewayProcess } from './gateway-process.js';
import { cosEnv, TEST_JWT_SECRET } from './harness.js';

export const CHILD_JWT_SECRET = TEST_JWT_SECRET;
export const CHILD_PROXY_SECRET = 'child-proxy-secret-0123456789';

export type ChildGateway = GatewayProcess;

/** Environment for a production-shaped child: PostgreSQL, the cos driver against the fixture, auth on. */
export function childEnv(fixture: CosFixture, databaseUrl: string): Record<string, string> {
  return {
    ...cosEnv(fixture),
    DATABASE_URL: databaseUrl,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    PROXY_TOKEN_SECRET: `k0:${CHILD_PROXY_SECRET}`,
  };
}

/** An API node (no background work) as a child process, logging at info. */
export function startChildGateway(env: Record<string, string>): Promise<ChildGateway> {
  return GatewayProcess.start({ LOG_LEVEL: 'info', SIGNET_ROLE: 'api', ...env });
}
