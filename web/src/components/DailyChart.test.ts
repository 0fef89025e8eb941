import { flushPromises, mount } from '@vue/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import DailyChart, { type DayPoint } from './DailyChart.vue';

/** `count` days up to 2030-01-31 (a Thursday), a few requests each. */
const days = (count: number): DayPoint[] =>
  Array.from({ length: count }, (_, i) => ({
    date: `2030-01-${String(31 - count + 1 + i).padStart(2, '0')}`,
    cacheHits: 10 + i,
    cacheMisses: 2,
  }));

/** The chart as drawn in a box `width` px wide (it reads the width once mounted, then redraws). */
async function chartAt(width: number, points: DayPoint[]) {
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(width);
  const w = mount(DailyChart, { props: { days: points, title: 'Requests per day' } });
  await flushPromises();
  expect(w.get('svg').attributes('width')).toBe(String(width));
  return w;
}

const weekday = (date: string) =>
  new Date(`${date}T00:00:00Z`).toLocaleDateString(undefined, { weekday: 'short', timeZone: 'UTC' });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('DailyChart', () => {
  it('names each day on one line where there is room', async () => {
    const points = days(7);
    const labels = (await chartAt(900, points)).findAll('text.chart__label');
    expect(labels).toHaveLength(7);
    for (const label of labels) expect(label.findAll('tspan')).toHaveLength(0);
    expect(labels[0]!.text()).toContain(weekday(points[0]!.date));
    expect(labels[0]!.text()).toContain('25');
  });

  it('stacks the day’s name over its date when seven days share a phone’s width', async () => {
    // 375 px screen: the chart's box is ~300 px, a day ~35 px: "30 Mon1 Tue" ran together.
    const points = days(7);
    const labels = (await chartAt(300, points)).findAll('text.chart__label');
    expect(labels).toHaveLength(7);
    labels.forEach((label, i) => {
      const lines = label.findAll('tspan').map((t) => t.text());
      expect(lines).toEqual([weekday(points[i]!.date), String(25 + i)]);
    });
  });

  it('names only every few days when even stacked labels do not fit, always the last one', async () => {
    const points = days(30);
    const w = await chartAt(300, points);
    const labels = w.findAll('text.chart__label');
    expect(labels.length).toBeGreaterThan(3);
    expect(labels.length).toBeLessThan(30);
    expect(labels.at(-1)!.findAll('tspan')[1]!.text()).toBe('31');
    // Evenly spaced, and far enough apart for a three-letter name at 11 px.
    const xs = labels.map((l) => Number(l.attributes('x')));
    const gaps = xs.slice(1).map((x, i) => x - xs[i]!);
    expect(Math.min(...gaps)).toBeGreaterThan(24);
    expect(new Set(gaps.map((g) => g.toFixed(3))).size).toBe(1);
    // The bars and the table for screen readers still have every day.
    expect(w.findAll('rect.chart__hits')).toHaveLength(30);
    expect(w.findAll('table tbody tr')).toHaveLength(30);
  });
});
