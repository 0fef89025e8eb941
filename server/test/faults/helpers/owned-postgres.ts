import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../support/ports.js';

const run = promisify(execFile);

/** One statement on its own connection (a replica's replay paused or resumed, a probe row). */
export async function sqlOn(url: string, text: string, values: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows;
  } finally {
    await c.end();
  }
}

/** The newest PostgreSQL server binaries on the machine (Debian layout), or PG_BIN. */
function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(
      `no PostgreSQL server binaries under ${root} (apt-get install postgresql, or set PG_BIN)`,
    );
  return path.join(root, versions[0]!, 'bin');
}

/**
 * A private PostgreSQL server the test owns (initdb in a temp folder, a free port on 127.0.0.1),
 * so it can be stopped and started under load without touching anyone else's database.
 * PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user.
 */
export class OwnedPostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly bin: string,
    /** More server settings (`-c name=value` each), e.g. log_statement=all. */
    private readonly settings: string[] = [],
  ) {}

  /** postgres://postgres@127.0.0.1:<port>/postgres */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(settings: string[] = []): Promise<OwnedPostgres> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-pg-'));
    const pg = new OwnedPostgres(await freePort(), dir, binDir(), settings);
    try {
      await ownDir(dir);
      await pg.tool('initdb', ['-D', pg.data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
      await pg.start();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return pg;
  }

  /**
   * A streaming replica of this server (`pg_basebackup -R`: it starts in recovery and follows
   * this one over a replication connection; initdb's `trust` covers replication from 127.0.0.1),
   * on a port of its own. Writes here reach it within milliseconds.
   */
  async replica(settings: string[] = []): Promise<OwnedPostgres> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'signet-pg-replica-'));
    const r = new OwnedPostgres(await freePort(), dir, this.bin, settings);
    try {
      await ownDir(dir);
      await r.tool('pg_basebackup', [...this.baseBackupArgs(r.data), '-R']);
      await r.start();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return r;
  }

  /** pg_basebackup's arguments for a copy of this server into `to`, with the WAL it needs. */
  private baseBackupArgs(to: string): string[] {
    return [
      '-D',
      to,
      '-X',
      'stream',
      '-c',
      'fast',
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-U',
      'postgres',
      '--no-sync',
    ];
  }

  /**
   * A base backup of this server as it is now (pg_basebackup, with the WAL it needs, no -R),
   * kept in its folder for `restore`.
   */
  async backup(): Promise<string> {
    const to = path.join(this.dir, `backup-${Date.now()}`);
    await this.tool('pg_basebackup', this.baseBackupArgs(to));
    return to;
  }

  /**
   * Stops this server and starts `backup` (from `backup()`) in place of its data, on the same
   * port, as a primary restored from a base backup is: recovered up to the end of the backup
   * (recovery_target='immediate'; restore_command finds nothing, the backup's own WAL is enough)
   * and promoted onto a new timeline. What it wrote after the backup is gone. Resolves once it
   * is out of recovery.
   */
  async restore(backup: string): Promise<void> {
    await this.stop('fast');
    await rm(this.data, { recursive: true, force: true });
    await rename(backup, this.data);
    const conf = path.join(this.data, 'postgresql.auto.conf');
    await appendFile(
      conf,
      "restore_command = 'false'\nrecovery_target = 'immediate'\nrecovery_target_action = 'promote'\n",
    );
    const signal = path.join(this.data, 'recovery.signal');
    await writeFile(signal, '');
    // Made by this process: as root, the server's own user must own them too.
    await ownDir(conf);
    await ownDir(signal);
    await this.start();
    const deadline = Date.now() + 30_000;
    const inRecovery = () =>
      sqlOn(this.url, 'select pg_is_in_recovery() as r').then(
        (rows) => rows[0].r === true,
        () => true,
      );
    while (await inRecovery()) {
      if (Date.now() > deadline) throw new Error('the restored server did not leave recovery within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The server's log (with log_statement=all, every statement it ran). */
  log(): Promise<string> {
    return readFile(path.join(this.dir, 'log'), 'utf8');
  }

  private get data(): string {
    return path.join(this.dir, 'data');
  }

  async start(): Promise<void> {
    const opts = [
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
      ...this.settings.map((x) => `-c ${x}`),
    ].join(' ');
    try {
      await this.tool('pg_ctl', [
        '-D',
        this.data,
        '-l',
        path.join(this.dir, 'log'),
        '-w',
        '-t',
        '30',
        '-o',
        opts,
        'start',
      ]);
    } catch (err) {
      const log = await readFile(path.join(this.dir, 'log'), 'utf8').catch(() => '');
      throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`);
    }
  }

  /** `fast`: sessions are terminated and the server shuts down cleanly; `immediate`: like a crash. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.tool('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '30', 'stop']);
  }

  /** Stops the server (if running) and removes its folder. */
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  private async tool(name: string, args: string[]): Promise<void> {
    const exe = path.join(this.bin, name);
    // cwd: the postgres user may not be allowed into the test runner's folder.
    if (process.getuid?.() === 0)
      await run('runuser', ['-u', 'postgres', '--', exe, ...args], { cwd: this.dir });
    else await run(exe, args, { cwd: this.dir });
  }
}

/** As root, PostgreSQL's tools run as `postgres`: the folder must be theirs. */
async function ownDir(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { stdout } = await run('id', ['-u', 'postgres']);
  await chown(dir, Number(stdout.trim()), -1);
}
