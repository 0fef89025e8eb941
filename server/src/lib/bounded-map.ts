/**
 * A Map that keeps at most `max` entries: setting a new key when full evicts the oldest
 * insertion. Replacing an existing key keeps its place. Used for the in-process memories (built
 * URLs, recent rows, the embedded cache) that must never grow with traffic.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BoundedMap max must be >= 1, got ${max}`);
  }

  override set(key: K, value: V): this {
    if (!super.has(key) && super.size >= this.max) {
      const oldest = super.keys().next();
      if (!oldest.done) super.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
