import { describe, expect, it } from 'vitest';

import type { Run } from '../src/api';
import { linePoints, numericValueNames, valueSeries } from '../src/valueseries';

const box = { width: 100, height: 50, pad: 5 };

const run = (id: string, values: Record<string, unknown>): Run =>
  ({ id, status: 'succeeded', values, queued_at: '2026-12-01T00:00:00Z' }) as unknown as Run;

describe('linePoints', () => {
  it('spreads the runs across the box and scales least to bottom, greatest to top', () => {
    expect(linePoints([10, 20, 30], box)).toEqual([
      { x: 5, y: 45 },
      { x: 50, y: 25 },
      { x: 95, y: 5 }
    ]);
  });

  it('scales negative values and keeps the order of the runs', () => {
    const points = linePoints([-4, 4, 0], box);
    expect(points.map(p => p.y)).toEqual([45, 5, 25]);
    expect(points.map(p => p.x)).toEqual([5, 50, 95]);
  });

  it('draws equal values flat across the middle, one value in the centre', () => {
    expect(linePoints([7, 7], box).map(p => p.y)).toEqual([25, 25]);
    expect(linePoints([3], box)).toEqual([{ x: 50, y: 25 }]);
    expect(linePoints([], box)).toEqual([]);
  });
});

describe('the series of a recorded value', () => {
  const runs = [
    run('c', { rows: 30, region: 'EU' }),
    run('b', { rows: 'n/a' }),
    run('a', { rows: 10, ok: true })
  ];

  it('offers the values recorded as numbers', () => {
    expect(numericValueNames(runs)).toEqual(['rows']);
  });

  it('is oldest first and leaves out runs without a number', () => {
    expect(valueSeries(runs, 'rows').map(p => [p.run.id, p.value])).toEqual([
      ['a', 10],
      ['c', 30]
    ]);
  });
});
