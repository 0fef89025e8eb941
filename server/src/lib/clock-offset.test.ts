import { describe, expect, it } from 'vitest';
import { describeOffset, readClockOffset } from './clock-offset.js';

describe('readClockOffset', () => {
  it("takes the server's reading as made at the midpoint of the round trip", async () => {
    const wall = 1_000_000;
    // The server answers 40 ms into a round trip (this host's wall clock moves with it).
    const read = async () => {
      await new Promise((r) => setTimeout(r, 40));
      return wall - 5_000;
    };
    const got = await readClockOffset(read, 500, () => wall);
    expect(got).toBeDefined();
    // This host is 5 s ahead; the midpoint adds half the round trip.
    expect(got!.offsetMs).toBeCloseTo(5_000 + got!.roundTripMs / 2, 6);
    expect(got!.roundTripMs).toBeGreaterThanOrEqual(35);
  });

  it('gives nothing when the round trip took too long to tell, or the server gave no clock', async () => {
    const slow = () => new Promise<number>((r) => setTimeout(() => r(Date.now()), 60));
    expect(await readClockOffset(slow, 20)).toBeUndefined();
    expect(await readClockOffset(async () => undefined)).toBeUndefined();
    expect(await readClockOffset(async () => Number.NaN)).toBeUndefined();
  });
});

describe('describeOffset', () => {
  it('says by how much and which way', () => {
    expect(describeOffset(0.4)).toBe('in step with');
    expect(describeOffset(2)).toBe('0.002 s ahead of');
    expect(describeOffset(-2_500)).toBe('2.500 s behind');
    expect(describeOffset(90_000)).toBe('90.0 s ahead of');
  });
});
