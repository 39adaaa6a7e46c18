/** Pieces the job and run views share: setting rows, parameters and run tables. */
import * as React from 'react';

import type { Run } from './api';
import { RunThumbnail, StatusIcon } from './components';
import {
  formatDuration,
  formatProgress,
  formatRelative,
  formatTime,
  runTriggerLabel,
  statusLabel
} from './format';
import type { Gettext } from './i18n';

/** A row of a settings table: a label and its value. */
export function SettingRow(props: { label: string; children: React.ReactNode }): JSX.Element {
  return (
    <tr>
      <th scope="row">{props.label}</th>
      <td>{props.children}</td>
    </tr>
  );
}

/** Parameter values as a table (none: the notebook's defaults). */
export function ParametersTable(props: {
  values: Record<string, unknown>;
  _: Gettext;
}): JSX.Element {
  const entries = Object.entries(props.values);
  if (!entries.length) {
    return <span className="jp-sched-muted">{props._('the notebook’s defaults')}</span>;
  }
  return (
    <table className="jp-sched-table jp-sched-params">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k} data-param={k}>
            <th scope="row">
              <code>{k}</code>
            </th>
            <td>
              <code>{JSON.stringify(v)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** What a run table asks the view to do. */
interface RunTableActions {
  openRun(id: string): void;
  openCompare(a: string, b: string): void;
}

/** A job's runs, newest first; a row opens its run, two ticked rows compare. */
export function RunTable(props: {
  runs: Run[];
  actions: RunTableActions;
  /** The URL of a run's thumbnail. */
  thumbnailUrl: (id: string) => string;
  now: number;
  _: Gettext;
}): JSX.Element {
  const { runs, actions, thumbnailUrl, now, _ } = props;
  // Runs picked for comparison, oldest pick first (at most two).
  const [picked, setPicked] = React.useState<string[]>([]);
  const pick = (id: string, on: boolean): void =>
    setPicked(now =>
      on ? [...now.filter(p => p !== id), id].slice(-2) : now.filter(p => p !== id)
    );
  if (!runs.length) {
    return (
      <div className="jp-sched-muted">
        {_('No runs yet. Use Run now, or wait for the schedule.')}
      </div>
    );
  }
  return (
    <>
      <CompareBar picked={picked} openCompare={actions.openCompare} _={_} />
      <table className="jp-sched-table jp-sched-runs">
        <thead>
          <tr>
            <th>
              <span className="jp-sched-visually-hidden">{_('compare')}</span>
            </th>
            <th>{_('status')}</th>
            <th>{_('started')}</th>
            <th>{_('trigger')}</th>
            <th>{_('duration')}</th>
            <th>{_('attempt')}</th>
            <th>{_('output')}</th>
          </tr>
        </thead>
        <tbody>
          {runs.map(run => (
            <RunTableRow
              key={run.id}
              run={run}
              picked={picked.includes(run.id)}
              pick={on => pick(run.id, on)}
              openRun={actions.openRun}
              thumbnailUrl={thumbnailUrl}
              now={now}
              _={_}
            />
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The button that compares the two picked runs, and what to do before it works. */
function CompareBar(props: {
  picked: string[];
  openCompare: RunTableActions['openCompare'];
  _: Gettext;
}): JSX.Element {
  const { picked, openCompare, _ } = props;
  // A before B: the older of the two picked runs first (ids sort by creation time).
  const [a, b] = [...picked].sort();
  return (
    <div className="jp-sched-compare-bar">
      <button
        type="button"
        className="jp-mod-styled jp-Button"
        data-action="compare"
        disabled={picked.length !== 2}
        onClick={() => openCompare(a, b)}
      >
        {_('Compare selected runs')}
      </button>
      <span className="jp-sched-muted">
        {picked.length === 2 ? '' : _('Tick two runs to compare them.')}
      </span>
    </div>
  );
}

/** One run of the table: its pick box, status, start, trigger, duration, attempt, output. */
function RunTableRow(props: {
  run: Run;
  picked: boolean;
  pick: (on: boolean) => void;
  openRun: RunTableActions['openRun'];
  thumbnailUrl: (id: string) => string;
  now: number;
  _: Gettext;
}): JSX.Element {
  const { run, picked, pick, openRun, thumbnailUrl, now, _ } = props;
  return (
    <tr
      data-run-id={run.id}
      data-status={run.status}
      className="jp-sched-clickable"
      tabIndex={0}
      onClick={() => openRun(run.id)}
      onKeyDown={e => (e.key === 'Enter' ? openRun(run.id) : undefined)}
    >
      <td onClick={e => e.stopPropagation()}>
        <input
          type="checkbox"
          data-compare-pick={run.id}
          aria-label={_('Pick this run to compare')}
          checked={picked}
          onChange={e => pick(e.currentTarget.checked)}
          onKeyDown={e => e.stopPropagation()}
        />
      </td>
      <td>
        <StatusIcon status={run.status} label={statusLabel(run.status, _)} />{' '}
        {statusLabel(run.status, _)}
      </td>
      <td title={formatTime(run.started_at ?? run.queued_at)}>
        {formatRelative(run.started_at ?? run.queued_at, now, _)}
      </td>
      <td>{runTriggerLabel(run.trigger, _)}</td>
      <td>
        {run.status === 'running' ? formatProgress(run, _) : formatDuration(run.duration_seconds)}
      </td>
      <td>{run.attempt}</td>
      <td className="jp-sched-thumbnail-cell">
        <RunThumbnail run={run} url={thumbnailUrl} label={_('output of this run')} />
      </td>
    </tr>
  );
}
