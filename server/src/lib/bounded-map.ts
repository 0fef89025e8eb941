/**
 * A Map that keeps at most `max` entries: setting a new key when full evicts the oldest
 * insertion. Replacing an existing key keeps its place. Used for the in-process memories (built
 * URLs, recent rows, the embedded cache) that must never grow with traffic.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  /** `onEvict` hears about each entry pushed out for room (not deletes, not replacements). */
  constructor(
    readonly max: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    super();
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BoundedMap max must be >= 1, got ${max}`);
  }

  /**
   * Where eviction left off, in insertion order. A fresh iterator for every eviction walked over
   * the slots of every entry deleted since the table was last rehashed (V8 leaves them in place):
   * ~22 µs per insertion into a full map of 20,000 instead of ~0.3 µs (measured), which made a
   * cold page's URL memo cost more than signing its URLs. An iterator kept alive resumes where it
   * was, skips entries deleted meanwhile and reaches entries added after it was made.
   */
  private oldest: IterableIterator<K> | undefined;

  override set(key: K, value: V): this {
    if (!super.has(key) && super.size >= this.max) this.evictOldest();
    return super.set(key, value);
  }

  private evictOldest(): void {
    // A finished iterator stays finished: start one more from the (new) beginning once.
    for (let attempt = 0; attempt < 2; attempt++) {
      this.oldest ??= super.keys();
      const next = this.oldest.next();
      if (!next.done) {
        const value = super.get(next.value) as V;
        super.delete(next.value);
        this.onEvict?.(next.value, value);
        return;
      }
      this.oldest = undefined;
    }
  }

  override clear(): void {
    super.clear();
    this.oldest = undefined;
  }
}
