import type { Registry } from 'prom-client';

/** One label combination's count; `inc` is one addition. */
export interface PlainCounterChild {
  inc(by?: number): void;
}

/**
 * A Prometheus counter with labels whose increment is one addition. prom-client's `Counter`
 * builds and hashes the label set and validates every label name on each `inc`, even through
 * `labels(...)` (~2 µs): the access log and the proxy count every response, and a hot redirect
 * is a few microseconds of work in all. Children are made once per label combination (the
 * callers' labels are bounded). The exposition is the same as prom-client's.
 */
export class PlainCounter<L extends string> {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly L[];
  private children = new Map<string, { labels: Record<L, string>; value: number; inc(by?: number): void }>();

  constructor(o: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames;
    for (const r of o.registers) r.registerMetric(this as never);
  }

  /** The child for these label values, in `labelNames` order. */
  labels(...values: string[]): PlainCounterChild {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name} takes ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let child = this.children.get(key);
    if (!child) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])) as Record<L, string>;
      const made = {
        labels,
        value: 0,
        inc(by = 1) {
          if (!(by >= 0) || !Number.isFinite(by)) throw new Error(`a counter only goes up, by ${by}?`);
          made.value += by;
        },
      };
      this.children.set(key, made);
      child = made;
    }
    return child;
  }

  reset(): void {
    this.children = new Map();
  }

  async get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.children.values()].map((c) => ({ value: c.value, labels: { ...c.labels } })),
    };
  }
}
