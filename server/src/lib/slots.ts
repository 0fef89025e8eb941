/**
 * A bound on work running at once: at most `size` holders; the rest wait in order. Shared by the
 * variant renderer, the placeholder computations and the derived-variant jobs, each with its own
 * bound.
 */
export class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** How many hold a slot. */
  get held(): number {
    return this.running;
  }

  /** How many wait for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** True when a new holder would have to wait. */
  get full(): boolean {
    return this.running >= this.size;
  }

  async acquire(): Promise<void> {
    if (this.running < this.size) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiter, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
