#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { VIEWER_ID, VIEWER_ID_RULE } from '../auth/viewer.js';
import { ConfigError, loadConfig } from '../config.js';
import { StartFailure } from '../lib/start-failure.js';
import { checkDependencies, formatTable } from './check.js';
import { CliError } from './cli-error.js';
import { runEraseOwner } from './erase-owner.js';
import { parseVisibilityOption, runImport } from './import.js';
import { runMissingObjects } from './missing-objects.js';
import { runOrphanSweepCommand } from './orphan-sweep.js';
import { issueToken } from './token.js';

const USAGE = `usage: signet <command> [options]   (configuration: the gateway's environment variables)

  token  --sub <id> [--admin | --service] [--ttl <seconds>]
         print an HS256 JWT signed with AUTH_JWT_SECRET (for trying things with auth on)
  check  validate the configuration and reach the database, Redis and the bucket
  import --owner <id> [--prefix <p>] [--dry-run] [--batch <rows per insert, default 100>]
         [--visibility private|public (default private)]
         add a row for every image already in the bucket (idempotent; a killed run resumes)
  orphan-sweep [--adopt]
         say whether the orphan sweep may run on this database and bucket, or is held (the
         database was restored from a backup, or is another one); --adopt lets this database
         sweep the bucket again, once what the restore lost has been recovered
  erase-owner <owner id> [--dry-run]
         delete every image of one owner (objects, variants, cached URLs) and remove all of the
         owner's rows, live or deleted (GDPR erasure); --dry-run prints the counts only; run it
         again to finish a run that failed midway
  missing-objects [--owner <id>] [--json] [--limit <n>]
         list the live images whose object is not in this region's bucket (deleted by hand, a
         bucket restored without it); exit 0 when none is, 1 when some are; changes nothing
         (--json: one object per line; --limit: stop after n)
`;

/** The CLI's one entry: `npm run signet -- …` in the repository (from source), `npx signet …` where the package is installed. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'token': {
      const { values } = parseArgs({
        args: rest,
        options: {
          sub: { type: 'string' },
          admin: { type: 'boolean', default: false },
          service: { type: 'boolean', default: false },
          ttl: { type: 'string' },
        },
      });
      if (!values.sub) throw new CliError('signet token needs --sub <user id>', 2);
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      // Checked here to show what was typed: Number("abc") would be reported as NaN.
      if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1)) {
        throw new CliError(`--ttl must be a whole number of seconds, got "${values.ttl}"`, 2);
      }
      const token = await issueToken(loadConfig().auth, {
        sub: values.sub,
        admin: values.admin,
        service: values.service,
        ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
      });
      process.stdout.write(`${token}\n`);
      return 0;
    }
    case 'check': {
      parseArgs({ args: rest, options: {} });
      let config: ReturnType<typeof loadConfig>;
      const started = performance.now();
      try {
        config = loadConfig();
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const latencyMs = performance.now() - started;
        process.stdout.write(
          `${formatTable([{ name: 'config', status: 'down', latencyMs, detail: err.message }])}\n`,
        );
        return 78;
      }
      const configRow = {
        name: 'config',
        status: 'ok' as const,
        latencyMs: performance.now() - started,
        detail: `${config.nodeEnv}, storage ${config.storageDriver}, auth ${config.auth.disabled ? 'off' : 'on'}`,
      };
      const rows = [configRow, ...(await checkDependencies(config))];
      process.stdout.write(`${formatTable(rows)}\n`);
      return rows.some((r) => r.status === 'down') ? 1 : 0;
    }
    case 'import': {
      const { values } = parseArgs({
        args: rest,
        options: {
          owner: { type: 'string' },
          prefix: { type: 'string', default: '' },
          'dry-run': { type: 'boolean', default: false },
          batch: { type: 'string' },
          visibility: { type: 'string' },
        },
      });
      if (!values.owner)
        throw new CliError('signet import needs --owner <user id> (who the images belong to)', 2);
      // The owner is a viewer id (a JWT `sub`): one the gateway would refuse could never see
      // or delete the imported rows, and it becomes part of Redis keys.
      if (!VIEWER_ID.test(values.owner)) {
        throw new CliError(
          `--owner must be a user id the gateway accepts as a JWT sub (${VIEWER_ID_RULE}), got "${values.owner}"`,
          2,
        );
      }
      const batch = values.batch === undefined ? undefined : Number(values.batch);
      if (batch !== undefined && !(Number.isInteger(batch) && batch >= 1 && batch <= 1000)) {
        throw new CliError(`--batch must be a whole number from 1 to 1000, got "${values.batch}"`, 2);
      }
      const visibility = parseVisibilityOption(values.visibility);
      await runImport(loadConfig(), {
        ownerId: values.owner,
        visibility,
        ...(batch !== undefined ? { batchSize: batch } : {}),
        prefix: values.prefix,
        dryRun: values['dry-run'],
        out: process.stderr.isTTY ? process.stderr : process.stdout,
      });
      return 0;
    }
    case 'orphan-sweep': {
      const { values } = parseArgs({ args: rest, options: { adopt: { type: 'boolean', default: false } } });
      const said = await runOrphanSweepCommand(loadConfig(), { adopt: values.adopt });
      process.stdout.write(`${said.line}\n`);
      return said.code;
    }
    case 'erase-owner': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { 'dry-run': { type: 'boolean', default: false } },
      });
      const [owner, ...extra] = positionals;
      if (!owner || extra.length > 0)
        throw new CliError('signet erase-owner needs exactly one owner id (a JWT sub)', 2);
      // A viewer id is what the gateway stores as owner_id; it is part of Redis keys too.
      if (!VIEWER_ID.test(owner)) {
        throw new CliError(
          `the owner id must be a user id the gateway accepts as a JWT sub (${VIEWER_ID_RULE}), got "${owner}"`,
          2,
        );
      }
      await runEraseOwner(loadConfig(), { ownerId: owner, dryRun: values['dry-run'], out: process.stdout });
      return 0;
    }
    case 'missing-objects': {
      const { values } = parseArgs({
        args: rest,
        options: {
          owner: { type: 'string' },
          json: { type: 'boolean', default: false },
          limit: { type: 'string' },
        },
      });
      // An owner the gateway would refuse as a JWT sub owns no row: a typo, not an empty report.
      if (values.owner !== undefined && !VIEWER_ID.test(values.owner)) {
        throw new CliError(
          `--owner must be a user id the gateway accepts as a JWT sub (${VIEWER_ID_RULE}), got "${values.owner}"`,
          2,
        );
      }
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
        throw new CliError(`--limit must be a whole number of at least 1, got "${values.limit}"`, 2);
      }
      return runMissingObjects(loadConfig(), {
        ownerId: values.owner,
        limit,
        json: values.json,
        out: process.stdout,
        progress: process.stderr,
      });
    }
    default:
      throw new CliError(`unknown command "${command}"\n${USAGE}`, 2);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`signet: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof ConfigError) {
      process.stderr.write(`signet: invalid configuration: ${err.message}\n`);
      process.exitCode = 78;
    } else if (err instanceof StartFailure) {
      // A server holds the embedded database, PostgreSQL cannot be reached, …: the message says
      // what to do; a stack would not.
      process.stderr.write(`signet: ${err.message}\n`);
      process.exitCode = 1;
    } else if ((err as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`signet: ${(err as Error).message}\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`signet: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
