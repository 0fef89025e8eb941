import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Request/response over the IPC channel of a forked child: the coordinator asks a helper process
 * (load generator, fixture, SSE clients) to do something and waits for its answer.
 */
interface Request {
  id: number;
  type: string;
  payload: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (payload: never) => unknown>;

/** Child side: answers the parent's requests with `handlers`; exits when the parent goes away. */
export function serve(handlers: Handlers): void {
  if (!process.send) throw new Error('this script runs as a forked child of bench/run.ts');
  process.on('message', (raw) => {
    const req = raw as Request;
    const handler = handlers[req.type];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown request ${req.type}`);
        return (handler as (p: unknown) => unknown)(req.payload);
      })
      .then(
        (result) => process.send!({ id: req.id, ok: true, result } satisfies Reply),
        (err: Error) =>
          process.send!({ id: req.id, ok: false, error: err.stack ?? String(err) } satisfies Reply),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

export class RpcChild {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.on('message', (raw) => {
      const reply = raw as Reply;
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(reply.error));
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr.push(d.toString());
      if (this.stderr.length > 50) this.stderr.shift();
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        for (const p of this.pending.values())
          p.reject(new Error(`helper exited (${code}): ${this.stderr.join('').slice(-2000)}`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  /** Forks a TypeScript helper under bench/children through tsx. */
  static start(
    script: string,
    // An undefined value removes the variable from what the child inherits.
    options: { env?: Record<string, string | undefined>; execArgv?: string[] } = {},
  ): RpcChild {
    const path = fileURLToPath(new URL(`../children/${script}`, import.meta.url));
    const child = fork(path, [], {
      execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    return new RpcChild(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(type: string, payload: unknown = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, type, payload } satisfies Request);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
