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

  override set(key: K, value: V): this {
    if (!super.has(key) && super.size >= this.max) {
      const oldest = super.entries().next();
      if (!oldest.done) {
        super.delete(oldest.value[0]);
        this.onEvict?.(oldest.value[0], oldest.value[1]);
      }
    }
    return super.set(key, value);
  }
}
