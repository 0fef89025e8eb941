import { describe, expect, it } from 'vitest';
import { BoundedMap } from './bounded-map.js';
import { fnv1a32 } from './hash.js';

describe('BoundedMap', () => {
  it('evicts the oldest insertion when full, and tells onEvict', () => {
    const evicted: [string, number][] = [];
    const m = new BoundedMap<string, number>(2, (k, v) => evicted.push([k, v]));
    m.set('a', 1).set('b', 2).set('c', 3);
    expect([...m.keys()]).toEqual(['b', 'c']);
    expect(evicted).toEqual([['a', 1]]);
  });

  it('replacing a key keeps its place and evicts nothing; deleting frees room', () => {
    const evicted: string[] = [];
    const m = new BoundedMap<string, number>(2, (k) => evicted.push(k));
    m.set('a', 1).set('b', 2).set('a', 10);
    expect([...m.entries()]).toEqual([
      ['a', 10],
      ['b', 2],
    ]);
    m.delete('a');
    m.set('c', 3);
    expect(evicted).toEqual([]);
    expect(m.size).toBe(2);
  });

  it('keeps evicting oldest-first through deletes, re-insertions and a clear, like a fresh scan would', () => {
    const m = new BoundedMap<number, number>(100);
    const model: number[] = []; // insertion order, oldest first
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      const k = rnd(400);
      const op = rnd(10);
      if (op === 0) {
        m.delete(k);
        const at = model.indexOf(k);
        if (at >= 0) model.splice(at, 1);
      } else if (op === 1 && i % 1000 === 0) {
        m.clear();
        model.length = 0;
      } else {
        if (!model.includes(k)) {
          if (model.length >= 100) model.shift();
          model.push(k);
        }
        m.set(k, i);
      }
    }
    expect([...m.keys()]).toEqual(model);
  });

  it('refuses a bound below one', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
  });
});

describe('fnv1a32', () => {
  it('is FNV-1a (published test vectors) and unsigned', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });
});
