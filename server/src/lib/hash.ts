/**
 * FNV-1a, 32 bits: a cheap, stable hash of a string, the same on every node and every run, for
 * spreading work (refresh jitter, shard tags). Not for anything an attacker must not predict.
 */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
