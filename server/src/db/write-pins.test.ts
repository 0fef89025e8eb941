import { describe, expect, it } from 'vitest';
import { MemoryEventBus } from '../events/memory-bus.js';
import { WritePins } from './write-pins.js';

function node(events: MemoryEventBus, pinMs = 60_000) {
  const warnings: string[] = [];
  const pins = new WritePins({
    pinMs,
    bus: { events, timeoutMs: 100 },
    logger: { warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)) },
  });
  return { pins, warnings };
}

describe('WritePins', () => {
  it('pins a writer on its own node at once, and on every node that hears the pin', async () => {
    const events = new MemoryEventBus();
    const a = node(events);
    const b = node(events);
    const pending = a.pins.pin('alice');
    // Set before the publish is even answered.
    expect(a.pins.pinned('alice')).toBe(true);
    await pending;
    expect(b.pins.pinned('alice')).toBe(true);
    expect(b.pins.pinned('bob')).toBe(false);
  });

  it('a pin heard for longer than the one held extends it; a shorter one does not shorten it', async () => {
    const events = new MemoryEventBus();
    const { pins } = node(events, 400);
    await events.publishWritePins([{ viewer: 'carol', forMs: 400 }]);
    await events.publishWritePins([{ viewer: 'carol', forMs: 50 }]); // the 400 ms pin stays
    await new Promise((r) => setTimeout(r, 200));
    expect(pins.pinned('carol')).toBe(true);
    await new Promise((r) => setTimeout(r, 250));
    expect(pins.pinned('carol')).toBe(false);
  });

  it("no pin heard outlasts the node's own bound, and a malformed viewer is not held", async () => {
    const events = new MemoryEventBus();
    const { pins } = node(events, 100);
    // From anyone who can publish on Redis: a pin for ever, an overlong viewer id.
    await events.publishWritePins([
      { viewer: 'dave', forMs: 1e12 },
      { viewer: 'x'.repeat(129), forMs: 100 },
    ]);
    expect(pins.pinned('dave')).toBe(true);
    expect(pins.pinned('x'.repeat(129))).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(pins.pinned('dave')).toBe(false);
  });

  it('holds a bounded number of pins: past it the oldest goes first, logged', async () => {
    const events = new MemoryEventBus();
    const { pins, warnings } = node(events);
    const many = Array.from({ length: 100_001 }, (_, i) => ({ viewer: `v${i}`, forMs: 60_000 }));
    await events.publishWritePins(many);
    expect(pins.pinned('v0')).toBe(false);
    expect(pins.pinned('v1')).toBe(true);
    expect(pins.pinned('v100000')).toBe(true);
    expect(warnings.filter((w) => w.startsWith('write pins full'))).toHaveLength(1);
  });

  it('forgets pins that ended (swept as new ones come)', async () => {
    const events = new MemoryEventBus();
    const { pins, warnings } = node(events);
    // 100 000 short pins, ended before the next ones: they make no room problem.
    await events.publishWritePins(
      Array.from({ length: 100_000 }, (_, i) => ({ viewer: `old${i}`, forMs: 1 })),
    );
    await new Promise((r) => setTimeout(r, 20));
    await events.publishWritePins(
      Array.from({ length: 100_000 }, (_, i) => ({ viewer: `new${i}`, forMs: 60_000 })),
    );
    expect(pins.pinned('new0')).toBe(true);
    expect(pins.pinned('old5')).toBe(false);
    expect(warnings).toEqual([]);
  });
});
