/**
 * The job view's chart of one recorded value over its runs: a plain SVG line, one dot per
 * run (its time and value as title), with the least and greatest values labelled.
 */
import * as React from 'react';

import type { Run } from './api';
import type { Gettext } from './i18n';
import { ChartBox, linePoints, numericValueNames, valueSeries } from './valueseries';

const BOX: ChartBox = { width: 320, height: 90, pad: 6 };

/** A choice of value and its chart; nothing when no run recorded a number. */
export function ValuesSection(props: { runs: Run[]; _: Gettext }): JSX.Element | null {
  const { runs, _ } = props;
  const names = numericValueNames(runs);
  const [chosen, choose] = React.useState<string | null>(null);
  if (!names.length) {
    return null;
  }
  const name = chosen !== null && names.includes(chosen) ? chosen : names[0];
  return (
    <section className="jp-sched-detail-section" data-section="values">
      <h2>{_('Recorded values')}</h2>
      <label className="jp-sched-inline-label">
        {_('Value')}{' '}
        <select
          className="jp-mod-styled"
          name="chart-value"
          value={name}
          onChange={e => choose(e.target.value)}
        >
          {names.map(n => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <ValueChart runs={runs} name={name} _={_} />
    </section>
  );
}

export function ValueChart(props: { runs: Run[]; name: string; _: Gettext }): JSX.Element {
  const { name, _ } = props;
  const series = valueSeries(props.runs, name);
  const values = series.map(p => p.value);
  const points = linePoints(values, BOX);
  const { width, height, pad } = BOX;
  const low = Math.min(...values);
  const high = Math.max(...values);
  return (
    <svg
      className="jp-sched-chart jp-sched-value-chart"
      viewBox={`0 0 ${width} ${height + 14}`}
      role="img"
      data-value={name}
      data-points={points.length}
      aria-label={_('%1 over the last %2 runs: from %3 to %4', name, points.length, low, high)}
    >
      <line
        className="jp-sched-chart-axis"
        x1={pad}
        x2={width - pad}
        y1={height - pad}
        y2={height - pad}
      />
      <polyline
        className="jp-sched-chart-line"
        points={points.map(p => `${p.x},${p.y}`).join(' ')}
      />
      {points.map((p, i) => (
        <circle
          key={series[i].run.id}
          className={`jp-sched-chart-dot jp-sched-status-${series[i].run.status}`}
          cx={p.x}
          cy={p.y}
          r={2.5}
        >
          <title>{`${new Date(series[i].run.scheduled_for ?? series[i].run.queued_at).toLocaleString()}: ${series[i].value}`}</title>
        </circle>
      ))}
      <text className="jp-sched-chart-label" x={pad} y={height + 11}>
        {_('min %1', low)}
      </text>
      <text className="jp-sched-chart-label" x={width - pad} y={height + 11} textAnchor="end">
        {_('max %1', high)}
      </text>
    </svg>
  );
}
