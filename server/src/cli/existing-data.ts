import { stat } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { Config } from '../config.js';
import { type Container, createContainer, localBucketRoot } from '../container.js';
import { createLogger } from '../logger.js';
import { CliError } from './cli-error.js';

const isDirectory = async (dir: string) => (await stat(dir).catch(() => null))?.isDirectory() === true;

/**
 * Refuses a maintenance command (`signet erase-owner`, `signet missing-objects`) on data that is
 * not there. The container makes what is missing: an empty embedded database under DATA_DIR when
 * no DATABASE_URL is set, and an empty local bucket folder. With a mistyped DATA_DIR (or the
 * default `./data` from another directory) the command would find nothing and report success: an
 * erasure of nothing, no missing objects.
 */
async function requireExistingData(config: Config): Promise<void> {
  if (!config.databaseUrl) {
    const dir = path.join(config.dataDir, 'pglite');
    if (!(await isDirectory(dir))) {
      throw new CliError(
        `no embedded database at ${dir} (DATA_DIR=${config.dataDir}): set DATA_DIR to the gateway's, or DATABASE_URL to its PostgreSQL`,
      );
    }
  }
  if (config.storageDriver === 'local') {
    const root = localBucketRoot(config);
    if (!(await isDirectory(root))) {
      throw new CliError(`the local bucket ${root} does not exist (DATA_DIR=${config.dataDir})`);
    }
  }
}

/**
 * The gateway's own services (the one composition root, no server, no workers) for a maintenance
 * command, over data that must be there (requireExistingData), logging on stderr: stdout is the
 * command's report.
 */
export async function maintenanceContainer(config: Config): Promise<Container> {
  await requireExistingData(config);
  const logger = createLogger(config.logLevel, pino.destination({ dest: 2, sync: true }));
  return createContainer(config, { logger });
}
