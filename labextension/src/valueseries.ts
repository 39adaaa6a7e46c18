/**
 * A recorded value over a job's runs, as a line chart draws it: which values are numbers,
 * their series (oldest run first), and the points scaled into the chart's box. Pure.
 */
import type { Run } from './api';

/** A chart's drawing area (SVG units) and its margin. */
export interface ChartBox {
  width: number;
  height: number;
  pad: number;
}

/** One run's value. */
export interface SeriesPoint {
  run: Run;
  value: number;
}

/** A point of the line, in the box's coordinates. */
export interface ChartPoint {
  x: number;
  y: number;
}

const isNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value);

/** The names of the values recorded as numbers by at least one of `runs`, sorted. */
export function numericValueNames(runs: readonly Run[]): string[] {
  const names = new Set<string>();
  for (const run of runs) {
    for (const [name, value] of Object.entries(run.values ?? {})) {
      if (isNumber(value)) {
        names.add(name);
      }
    }
  }
  return [...names].sort();
}

/**
 * The runs (newest first, as listed) that recorded `name` as a number, oldest first: the
 * chart reads left to right in time.
 */
export function valueSeries(runs: readonly Run[], name: string): SeriesPoint[] {
  const points: SeriesPoint[] = [];
  for (const run of runs) {
    const value = (run.values ?? {})[name];
    if (isNumber(value)) {
      points.push({ run, value });
    }
  }
  return points.reverse();
}

/**
 * The points of `values` in `box`: evenly spaced left to right (one value in the middle),
 * the least value at the bottom and the greatest at the top of the area inside the margin
 * (all equal: a flat line across the middle).
 */
export function linePoints(values: readonly number[], box: ChartBox): ChartPoint[] {
  const { width, height, pad } = box;
  if (!values.length) {
    return [];
  }
  const low = Math.min(...values);
  const high = Math.max(...values);
  const innerWidth = width - 2 * pad;
  const innerHeight = height - 2 * pad;
  const step = values.length > 1 ? innerWidth / (values.length - 1) : 0;
  return values.map((value, i) => ({
    x: values.length > 1 ? pad + i * step : width / 2,
    y: high === low ? height / 2 : height - pad - (innerHeight * (value - low)) / (high - low)
  }));
}
