/**
 * A value that is at hand or on its way. The proxy's hot redirect is answered from memory (the
 * recent row, the verified token, the recent URL); passing those values along as promises cost
 * it a dozen promises and microtasks per request, more than the rest of the work
 * (docs/benchmarks.md, scenario 6).
 */
export type MaybePromise<T> = T | Promise<T>;

/** `f(value)`: at once when the value is at hand, else when it settles. */
export function andThen<T, U>(value: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}
