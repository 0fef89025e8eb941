/** What one request of the load saw; `ok` is the test's own verdict on the answer. */
export interface Outcome {
  ok: boolean;
  /** HTTP status, 0 when no answer came (refused, reset, timed out). */
  status: number;
  /** Why it is not ok, or a label the test counts (e.g. 'SERVICE_UNAVAILABLE'). */
  detail?: string;
  /**
   * GraphQL pages: every URL on the page came from the cache, or was its image's first signing
   * of a step that had just begun: the cache held the previous step's URL then, by design,
   * whatever the fault did.
   */
  cached?: boolean;
  /** GraphQL pages: how many of the page's URLs came from the cache, of `urls`. */
  hits?: number;
  urls?: number;
}

export interface Sample extends Outcome {
  kind: string;
  phase: string;
  startedAt: number;
  ms: number;
}

export interface LatencySummary {
  count: number;
  failures: number;
  p50: number;
  p99: number;
  max: number;
}

type Request = () => Promise<Outcome>;

/**
 * An open-loop load: requests start at a fixed rate whatever the answers take (a slow server
 * does not slow the load down, so an outage's latency shows in full), each tagged with the phase
 * it started in. Every request is kept: nothing is sampled away.
 */
export class SteadyLoad {
  readonly samples: Sample[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private phaseName = 'start';
  private launched = 0;
  private startedAt = 0;

  /** @param requests kind -> request; each tick starts one of every kind. */
  constructor(
    private readonly ratePerSecond: number,
    private readonly requests: Record<string, Request>,
  ) {}

  start(phase: string): void {
    this.phaseName = phase;
    this.startedAt = performance.now();
    // Ticks catch up on the schedule, so a busy event loop does not lower the rate.
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.ratePerSecond);
      while (this.launched < due) {
        this.launched++;
        for (const [kind, request] of Object.entries(this.requests)) this.launch(kind, request);
      }
    }, 10);
  }

  phase(name: string): void {
    this.phaseName = name;
  }

  get current(): string {
    return this.phaseName;
  }

  /** Stops starting requests and waits for those in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.inflight]);
  }

  select(filter: { kind?: string; phase?: string | string[] } = {}): Sample[] {
    const phases = typeof filter.phase === 'string' ? [filter.phase] : filter.phase;
    return this.samples.filter(
      (s) => (!filter.kind || s.kind === filter.kind) && (!phases || phases.includes(s.phase)),
    );
  }

  failures(filter: { kind?: string; phase?: string | string[] } = {}): Sample[] {
    return this.select(filter).filter((s) => !s.ok);
  }

  summary(filter: { kind?: string; phase?: string | string[] } = {}): LatencySummary {
    return summarize(this.select(filter));
  }

  private launch(kind: string, request: Request): void {
    const phase = this.phaseName;
    const started = performance.now();
    const startedAt = Date.now();
    const p = request()
      .catch((err: unknown): Outcome => ({ ok: false, status: 0, detail: (err as Error).message }))
      .then((o) => {
        this.samples.push({ ...o, kind, phase, startedAt, ms: performance.now() - started });
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }
}

export function summarize(samples: readonly Sample[]): LatencySummary {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const at = (q: number) =>
    ms.length === 0 ? 0 : ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)]!;
  return {
    count: ms.length,
    failures: samples.filter((s) => !s.ok).length,
    p50: round(at(0.5)),
    p99: round(at(0.99)),
    max: round(ms[ms.length - 1] ?? 0),
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** One line per phase for the test output (docs/reliability.md takes its numbers from these). */
export function report(title: string, load: SteadyLoad, kinds: string[], phases: string[]): string {
  const lines = [`[faults] ${title}`];
  for (const kind of kinds) {
    for (const phase of phases) {
      const s = load.summary({ kind, phase });
      if (s.count === 0) continue;
      lines.push(
        `  ${kind.padEnd(10)} ${phase.padEnd(10)} n=${s.count} failed=${s.failures} p50=${s.p50}ms p99=${s.p99}ms max=${s.max}ms`,
      );
    }
    const all = load.summary({ kind });
    lines.push(
      `  ${kind.padEnd(10)} ${'all'.padEnd(10)} n=${all.count} failed=${all.failures} p50=${all.p50}ms p99=${all.p99}ms max=${all.max}ms`,
    );
  }
  const text = lines.join('\n');
  console.log(text);
  return text;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
