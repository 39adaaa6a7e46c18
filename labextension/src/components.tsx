/** Small React pieces shared by the panel, the dialog and the detail views. */
import {
  LabIcon,
  checkIcon,
  circleEmptyIcon,
  closeIcon,
  offlineBoltIcon,
  runningIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import type { Run } from './api';
import { formatDuration } from './format';
import { Gettext } from './i18n';
import type { RunStatus } from './statuses';

const calendarSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M19 4h-1V2h-2v2H8V2H6v2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h7.3a7 7 0 0 1-1.1-2H5V10h14v1.3a7 7 0 0 1 2 .9V6a2 2 0 0 0-2-2z"/>
    <path d="M17.5 12a5.5 5.5 0 1 0 0 11 5.5 5.5 0 0 0 0-11zm2 7.6-2.8-1.6V14.5h1.2v2.8l2.2 1.3z"/>
  </g>
</svg>`;

/** The extension's icon: a calendar with a clock. */
export const schedIcon = new LabIcon({ name: 'jupyter-sched:calendar', svgstr: calendarSvg });

const hourglassSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M6 2v6l4 4-4 4v6h12v-6l-4-4 4-4V2H6zm10 14.5V20H8v-3.5l4-4 4 4zM12 11.5l-4-4V4h8v3.5l-4 4z"/>
  </g>
</svg>`;
const hourglassIcon = new LabIcon({ name: 'jupyter-sched:hourglass', svgstr: hourglassSvg });

const STATUS_ICONS: Record<RunStatus, LabIcon> = {
  queued: circleEmptyIcon,
  running: runningIcon,
  succeeded: checkIcon,
  failed: closeIcon,
  timed_out: hourglassIcon,
  cancelled: stopIcon,
  lost: offlineBoltIcon,
  skipped: circleEmptyIcon
};

/** A run status as an icon coloured by meaning, with the status in words as its title. */
export function StatusIcon(props: { status: RunStatus; label: string }): JSX.Element {
  const Icon = STATUS_ICONS[props.status] ?? circleEmptyIcon;
  return (
    <span
      className={`jp-sched-status jp-sched-status-${props.status}`}
      title={props.label}
      aria-label={props.label}
      role="img"
    >
      <Icon.react tag="span" elementSize="small" />
    </span>
  );
}

/** A status icon followed by the status in words. */
export function StatusBadge(props: { status: RunStatus; label: string }): JSX.Element {
  return (
    <span className="jp-sched-status-badge" data-status={props.status}>
      <StatusIcon {...props} />
      <span className="jp-sched-status-text">{props.label}</span>
    </span>
  );
}

/** A progress bar for a running run. */
export function ProgressBar(props: { run: Run; label: string }): JSX.Element | null {
  const { done, total } = props.run.progress;
  if (!total) {
    return null;
  }
  const pct = Math.round((100 * Math.min(done, total)) / total);
  return (
    <span className="jp-sched-progress" title={props.label}>
      <span className="jp-sched-progress-bar" style={{ width: `${pct}%` }} />
    </span>
  );
}

/** A labelled form row with the error of its field under it. */
export function Field(props: {
  label: string;
  error?: string;
  hint?: React.ReactNode;
  field: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <div
      className={`jp-sched-field${props.error ? ' jp-sched-mod-error' : ''}`}
      data-field={props.field}
    >
      <label className="jp-sched-label">
        <span className="jp-sched-label-text">{props.label}</span>
        {props.children}
      </label>
      {props.hint && !props.error && <div className="jp-sched-hint">{props.hint}</div>}
      {props.error && (
        <div className="jp-sched-error" role="alert" data-error-for={props.field}>
          {props.error}
        </div>
      )}
    </div>
  );
}

/** The chart's size (SVG units) and margin. */
const CHART = { width: 320, height: 90, pad: 4 };

/**
 * Durations of runs (oldest left), one bar each, coloured by outcome; plain SVG scaled to
 * the slowest run, with a dashed line at the median.
 */
export function DurationChart(props: {
  runs: Run[];
  _: Gettext;
  median?: number | null;
}): JSX.Element {
  const { median, _ } = props;
  const runs = props.runs
    .filter(r => r.duration_seconds !== null)
    .slice(0, 40)
    .reverse();
  if (!runs.length) {
    return <div className="jp-sched-muted">{_('No finished runs yet.')}</div>;
  }
  const { width, height, pad } = CHART;
  const max = Math.max(...runs.map(r => r.duration_seconds as number), 0.001);
  const y = (s: number): number => height - pad - ((height - 2 * pad) * s) / max;
  return (
    <svg
      className="jp-sched-chart"
      viewBox={`0 0 ${width} ${height + 14}`}
      role="img"
      aria-label={_('Duration of the last %1 runs; longest %2', runs.length, formatDuration(max))}
    >
      <line
        className="jp-sched-chart-axis"
        x1={pad}
        x2={width - pad}
        y1={height - pad}
        y2={height - pad}
      />
      <DurationBars runs={runs} y={y} />
      {median ? (
        <line
          className="jp-sched-chart-median"
          x1={pad}
          x2={width - pad}
          y1={y(median)}
          y2={y(median)}
        />
      ) : null}
      <text className="jp-sched-chart-label" x={pad} y={height + 11}>
        {_('max %1', formatDuration(max))}
      </text>
      {median ? (
        <text className="jp-sched-chart-label" x={width - pad} y={height + 11} textAnchor="end">
          {_('median %1 (dashed)', formatDuration(median))}
        </text>
      ) : null}
    </svg>
  );
}

/** One bar per run, its top at `y(duration)`, with the run's time and duration as title. */
function DurationBars(props: { runs: Run[]; y: (seconds: number) => number }): JSX.Element {
  const { width, height, pad } = CHART;
  const step = (width - 2 * pad) / props.runs.length;
  const barWidth = Math.min(18, Math.max(2, step - 2));
  return (
    <>
      {props.runs.map((run, i) => {
        const top = props.y(run.duration_seconds as number);
        return (
          <rect
            key={run.id}
            className={`jp-sched-chart-bar jp-sched-status-${run.status}`}
            x={pad + i * step}
            y={top}
            width={barWidth}
            height={Math.max(1, height - pad - top)}
          >
            <title>{`${new Date(run.queued_at).toLocaleString()}: ${formatDuration(run.duration_seconds)} (${run.status})`}</title>
          </rect>
        );
      })}
    </>
  );
}

/**
 * A read-only text with a Copy button: copies with the clipboard API, or selects the text
 * for the user to copy when the clipboard is not available (no secure context, refused).
 */
export function CopyField(props: {
  value: string;
  label: string;
  name: string;
  _: Gettext;
}): JSX.Element {
  const { value, label, name, _ } = props;
  const input = React.useRef<HTMLInputElement>(null);
  const [copied, setCopied] = React.useState<'' | 'copied' | 'selected'>('');
  const select = (): void => {
    input.current?.focus();
    input.current?.select();
    setCopied('selected');
  };
  const copy = (): void => {
    const clipboard = typeof navigator !== 'undefined' ? navigator.clipboard : undefined;
    if (!clipboard?.writeText) {
      select();
      return;
    }
    clipboard.writeText(value).then(() => setCopied('copied'), select);
  };
  return (
    <span className="jp-sched-copy">
      <input
        ref={input}
        className="jp-mod-styled jp-sched-copy-value"
        readOnly
        aria-label={label}
        data-field={name}
        value={value}
        onFocus={e => e.target.select()}
      />
      <button
        className="jp-mod-styled jp-sched-button"
        data-action={`copy-${name}`}
        title={_('Copy %1', label)}
        onClick={copy}
      >
        {_('Copy')}
      </button>
      {copied && (
        <span className="jp-sched-muted" role="status">
          {copied === 'copied' ? _('Copied.') : _('Selected: press Ctrl+C to copy.')}
        </span>
      )}
    </span>
  );
}

/**
 * The thumbnail of a run's last image output; nothing for a run without one, so no
 * broken image ever shows (and an image that fails to load hides itself).
 */
export function RunThumbnail(props: {
  run: Pick<Run, 'id' | 'has_thumbnail'> | null | undefined;
  url: (id: string) => string;
  label: string;
}): JSX.Element | null {
  const { run, url, label } = props;
  const [failed, setFailed] = React.useState(false);
  if (!run?.has_thumbnail || failed) {
    return null;
  }
  return (
    <img
      className="jp-sched-thumbnail"
      data-thumbnail={run.id}
      src={url(run.id)}
      alt={label}
      loading="lazy"
      onError={() => setFailed(true)}
    />
  );
}
