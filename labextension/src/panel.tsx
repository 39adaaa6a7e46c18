/** The left sidebar panel "Scheduled notebooks": jobs, recent runs, filters. */
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, UseSignal, addIcon, refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { Job, Run } from './api';
import { ProgressBar, RunThumbnail, StatusIcon, schedIcon } from './components';
import {
  formatDuration,
  formatProgress,
  formatRate,
  formatRelative,
  formatTime,
  runTriggerLabel,
  jobStatusLabel,
  statusLabel
} from './format';
import { Gettext } from './i18n';
import { JobErrorLine } from './joberror';
import { Filters, SchedModel } from './model';
import { RUN_STATUSES } from './statuses';
import { batchProgressText } from './batchview';
import { inFlight } from './polling';
import type { RunStatus } from './api';

/** What the panel asks the rest of the extension to do. */
export interface Actions {
  openJob(id: string): void;
  openRun(id: string): void;
  openBatch(jobId: string, batchId: string): void;
  /** Open the create dialog, for `path` when given. */
  schedule(path?: string): void;
}

export class SchedPanel extends ReactWidget {
  constructor(
    private model: SchedModel,
    private actions: Actions,
    private trans: TranslationBundle
  ) {
    super();
    this.id = 'jupyter-sched-panel';
    this.addClass('jp-sched-panel');
    this.title.icon = schedIcon;
    this.title.caption = trans.__('Scheduled notebooks');
  }

  protected onAfterShow(): void {
    void this.model.refresh();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <PanelView model={this.model} actions={this.actions} _={this.trans.__.bind(this.trans)} />
        )}
      </UseSignal>
    );
  }
}

function PanelView(props: { model: SchedModel; actions: Actions; _: Gettext }): JSX.Element {
  const { model, actions, _ } = props;
  const { filters } = model;
  const filtered = !!(filters.jobStatus || filters.runStatus || filters.tag);
  const now = Date.now();
  return (
    <div className="jp-sched-panel-body">
      <PanelHeader model={model} actions={actions} _={_} />
      <Banners model={model} now={now} _={_} />
      <FilterBar model={model} _={_} />
      {!model.loaded && !model.connectionError ? (
        <div className="jp-sched-muted jp-sched-loading">{_('Loading…')}</div>
      ) : model.loaded && !model.jobs.length && !model.runs.length && !filtered ? (
        <EmptyState actions={actions} _={_} />
      ) : (
        <>
          <JobsSection model={model} actions={actions} now={now} _={_} />
          <RunsSection model={model} actions={actions} now={now} _={_} />
        </>
      )}
    </div>
  );
}

/** Props of the panel's parts that list jobs or runs. */
interface ListProps {
  model: SchedModel;
  actions: Actions;
  now: number;
  _: Gettext;
}

/** The jobs that match the filters. */
function JobsSection(props: ListProps): JSX.Element {
  const { model, actions, now, _ } = props;
  return (
    <section className="jp-sched-section" aria-label={_('Jobs')}>
      <h3 className="jp-sched-section-title">
        {_('Jobs')} <span className="jp-sched-count">{model.jobs.length}</span>
      </h3>
      {model.jobs.length ? (
        <ul className="jp-sched-list" data-list="jobs">
          {model.jobs.map(job => (
            <JobRow key={job.id} job={job} model={model} actions={actions} now={now} _={_} />
          ))}
        </ul>
      ) : (
        <div className="jp-sched-muted">{_('No jobs match the filters.')}</div>
      )}
    </section>
  );
}

/** The recent runs that match the filters, a batch's runs as one row. */
function RunsSection(props: ListProps): JSX.Element {
  const { model, actions, now, _ } = props;
  return (
    <section className="jp-sched-section" aria-label={_('Recent runs')}>
      <h3 className="jp-sched-section-title">
        {_('Recent runs')} <span className="jp-sched-count">{model.runs.length}</span>
      </h3>
      {model.runs.length ? (
        <ul className="jp-sched-list" data-list="runs">
          {groupBatches(model.runs).map(item =>
            'batchId' in item ? (
              <BatchRow
                key={item.batchId}
                batchId={item.batchId}
                runs={item.runs}
                model={model}
                actions={actions}
                _={_}
              />
            ) : (
              <RunRow key={item.id} run={item} model={model} actions={actions} now={now} _={_} />
            )
          )}
        </ul>
      ) : (
        <div className="jp-sched-muted">{_('No runs match the filters.')}</div>
      )}
    </section>
  );
}

function PanelHeader(props: { model: SchedModel; actions: Actions; _: Gettext }): JSX.Element {
  const { model, actions, _ } = props;
  return (
    <div className="jp-sched-panel-header">
      <h2 className="jp-sched-panel-title">{_('Scheduled notebooks')}</h2>
      <button
        className="jp-ToolbarButtonComponent jp-mod-minimal jp-Button"
        title={_('Schedule a notebook…')}
        aria-label={_('Schedule a notebook…')}
        onClick={() => actions.schedule()}
        data-action="new-job"
      >
        <addIcon.react tag="span" elementSize="normal" />
      </button>
      <button
        className="jp-ToolbarButtonComponent jp-mod-minimal jp-Button"
        title={_('Refresh')}
        aria-label={_('Refresh')}
        onClick={() => void model.refresh()}
      >
        <refreshIcon.react tag="span" elementSize="normal" />
      </button>
    </div>
  );
}

/** The "retrying…" banner while the server is away, and the last error it answered. */
function Banners(props: { model: SchedModel; now: number; _: Gettext }): JSX.Element {
  const { model, now, _ } = props;
  return (
    <>
      {model.connectionError && (
        <div className="jp-sched-banner jp-sched-banner-warn" role="status" data-banner="offline">
          {_('Cannot reach the server (%1) — retrying…', model.connectionError.message)}
          {model.updatedAt
            ? ' ' +
              _(
                'Showing what it said %1.',
                formatRelative(new Date(model.updatedAt).toISOString(), now, _)
              )
            : ''}
        </div>
      )}
      {model.error && (
        <div className="jp-sched-banner jp-sched-banner-error" role="alert">
          {model.error.message}
        </div>
      )}
    </>
  );
}

/** The filters of the lists: job status, run status, tag, and (admins) every user's. */
function FilterBar(props: { model: SchedModel; _: Gettext }): JSX.Element {
  const { model, _ } = props;
  const { filters } = model;
  return (
    <div className="jp-sched-filters">
      <FilterSelect
        label={_('Jobs')}
        description={_('Filter jobs by status')}
        filter="job-status"
        value={filters.jobStatus}
        set={value => model.setFilters({ jobStatus: value as Filters['jobStatus'] })}
        options={[
          ['', _('all')],
          ['active', _('active')],
          ['paused', _('paused')],
          ['error', _('error')]
        ]}
      />
      <FilterSelect
        label={_('Runs')}
        description={_('Filter runs by status')}
        filter="run-status"
        value={filters.runStatus}
        set={value => model.setFilters({ runStatus: value as Filters['runStatus'] })}
        options={[['', _('all')], ...RUN_STATUSES.map(s => [s, statusLabel(s, _)] as const)]}
      />
      <FilterSelect
        label={_('Tag')}
        description={_('Filter by tag')}
        filter="tag"
        value={filters.tag}
        set={tag => model.setFilters({ tag })}
        options={[['', _('any')], ...model.tags.map(t => [t, t] as const)]}
      />
      {model.caller?.admin && (
        <label title={_('You administer the scheduler: show every user’s jobs and runs')}>
          <input
            type="checkbox"
            data-filter="all-users"
            checked={filters.allUsers}
            onChange={e => model.setFilters({ allUsers: e.target.checked })}
          />
          {_('All users')}
        </label>
      )}
    </div>
  );
}

/** One filter of the bar: a labelled choice among `options` (value, text). */
function FilterSelect(props: {
  label: string;
  description: string;
  filter: string;
  value: string;
  set: (value: string) => void;
  options: readonly (readonly [string, string])[];
}): JSX.Element {
  return (
    <label>
      {props.label}
      <select
        className="jp-mod-styled"
        aria-label={props.description}
        data-filter={props.filter}
        value={props.value}
        onChange={e => props.set(e.target.value)}
      >
        {props.options.map(([value, text]) => (
          <option key={value} value={value}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Whose a job or run is, when the lists hold other users' too. */
function OwnerLabel(props: { owner: string; model: SchedModel; _: Gettext }): JSX.Element | null {
  const { owner, model, _ } = props;
  if (!model.showsOwners) {
    return null;
  }
  return (
    <span className="jp-sched-owner" data-field="owner" title={_('owner')}>
      {owner}
    </span>
  );
}

function EmptyState(props: { actions: Actions; _: Gettext }): JSX.Element {
  const { _ } = props;
  return (
    <div className="jp-sched-empty" data-empty="jobs">
      <schedIcon.react tag="div" className="jp-sched-empty-icon" elementSize="xlarge" />
      <h3>{_('No scheduled notebooks yet')}</h3>
      <p>{_('Run a notebook now, later, or on a schedule with its own parameters:')}</p>
      <ol>
        <li>{_('Right-click a notebook in the file browser and choose “Schedule notebook…”,')}</li>
        <li>{_('or click the calendar button in an open notebook’s toolbar,')}</li>
        <li>{_('or use the button below.')}</li>
      </ol>
      <p>{_('Its runs, their outputs and logs will be listed here.')}</p>
      <button
        className="jp-Dialog-button jp-mod-accept jp-mod-styled"
        onClick={() => props.actions.schedule()}
      >
        {_('Schedule a notebook…')}
      </button>
    </div>
  );
}

/** A job of the panel's list: its last run's status, name, state, success rate, notebook,
 * latest output, error and schedule; a click opens it. */
function JobRow(props: {
  job: Job;
  model: SchedModel;
  actions: Actions;
  now: number;
  _: Gettext;
}): JSX.Element {
  const { job, model, actions, now, _ } = props;
  const stats = model.stats(job.id);
  const last = job.last_run;
  return (
    <li
      className={`jp-sched-row jp-sched-job${job.status !== 'active' ? ` jp-sched-mod-${job.status}` : ''}`}
      data-job-id={job.id}
      data-job-name={job.name}
      tabIndex={0}
      role="button"
      onClick={() => actions.openJob(job.id)}
      onKeyDown={e => (e.key === 'Enter' ? actions.openJob(job.id) : undefined)}
      title={_('Open job “%1”', job.name)}
    >
      <div className="jp-sched-row-main">
        {last ? (
          <StatusIcon status={last.status} label={_('last run %1', statusLabel(last.status, _))} />
        ) : (
          <span className="jp-sched-status jp-sched-status-none" title={_('never run')} />
        )}
        <span className="jp-sched-row-name">{job.name}</span>
        <OwnerLabel owner={job.owner} model={model} _={_} />
        {job.status !== 'active' && (
          <span
            className={`jp-sched-pill jp-sched-pill-${job.status}`}
            data-job-status={job.status}
            title={job.error ?? undefined}
          >
            {jobStatusLabel(job.status, _)}
          </span>
        )}
        <span className="jp-sched-row-aside" title={_('success rate')}>
          {formatRate(stats?.success_rate)}
        </span>
      </div>
      <div className="jp-sched-row-sub" title={job.notebook}>
        {job.notebook}
      </div>
      <RunThumbnail
        run={last}
        url={id => model.api.thumbnailUrl(id)}
        label={_('latest output of “%1”', job.name)}
      />
      <JobErrorLine job={job} />
      <JobScheduleLine job={job} now={now} _={_} />
    </li>
  );
}

/** A job row's trigger in words and, while the job is active, when it fires next. */
function JobScheduleLine(props: { job: Job; now: number; _: Gettext }): JSX.Element {
  const { job, now, _ } = props;
  return (
    <div className="jp-sched-row-sub">
      <span data-field="trigger">{job.trigger_description}</span>
      {job.status === 'active' && job.next_fire_at && (
        <span title={formatTime(job.next_fire_at)}>
          {' '}
          · {_('next %1', formatRelative(job.next_fire_at, now, _))}
        </span>
      )}
    </div>
  );
}

/** The runs list with each batch's runs as one item (where its first run is listed). */
function groupBatches(runs: Run[]): (Run | { batchId: string; runs: Run[] })[] {
  const items: (Run | { batchId: string; runs: Run[] })[] = [];
  const batches = new Map<string, Run[]>();
  for (const run of runs) {
    if (!run.batch_id) {
      items.push(run);
      continue;
    }
    const known = batches.get(run.batch_id);
    if (known) {
      known.push(run);
    } else {
      const group = [run];
      batches.set(run.batch_id, group);
      items.push({ batchId: run.batch_id, runs: group });
    }
  }
  return items;
}

/** A batch (a sweep's fire, a backfill) as one row: its progress; opens its summary. */
function BatchRow(props: {
  batchId: string;
  runs: Run[];
  model: SchedModel;
  actions: Actions;
  _: Gettext;
}): JSX.Element {
  const { batchId, runs, model, actions, _ } = props;
  const batch = model.batches.get(batchId);
  const jobId = batch?.job_id ?? runs[0].job_id ?? '';
  const name = model.job(jobId)?.name ?? runs[0].notebook;
  const total = batch?.total ?? runs.length;
  const done = batch?.progress.done ?? runs.filter(r => !inFlight([r.status])).length;
  const failed = batch?.progress.failed ?? 0;
  const status: RunStatus = done < total ? 'running' : failed ? 'failed' : 'succeeded';
  const progress = batch ? batchProgressText(batch, _) : _('%1/%2 done', done, total);
  const kind = batch?.kind === 'backfill' ? _('backfill') : _('sweep');
  return (
    <li
      className="jp-sched-row jp-sched-run jp-sched-batch"
      data-batch-id={batchId}
      data-status={status}
      data-job-name={name}
      tabIndex={0}
      role="button"
      onClick={() => actions.openBatch(jobId, batchId)}
      onKeyDown={e => (e.key === 'Enter' ? actions.openBatch(jobId, batchId) : undefined)}
      title={_('Open the summary of this %1 of “%2”', kind, name)}
    >
      <div className="jp-sched-row-main">
        <StatusIcon status={status} label={statusLabel(status, _)} />
        <span className="jp-sched-row-name">{name}</span>
        <span className="jp-sched-row-aside" data-field="batch-progress">
          {progress}
        </span>
      </div>
      <div className="jp-sched-row-sub">
        {kind} · {_('%1 runs', total)}
      </div>
      {done < total && (
        <span className="jp-sched-progress" title={progress}>
          <span
            className="jp-sched-progress-bar"
            style={{ width: `${Math.round((100 * done) / total)}%` }}
          />
        </span>
      )}
    </li>
  );
}

function RunRow(props: {
  run: Run;
  model: SchedModel;
  actions: Actions;
  now: number;
  _: Gettext;
}): JSX.Element {
  const { run, model, actions, now, _ } = props;
  const job = model.job(run.job_id);
  const name = job?.name ?? run.notebook;
  const label = statusLabel(run.status, _);
  return (
    <li
      className="jp-sched-row jp-sched-run"
      data-run-id={run.id}
      data-status={run.status}
      data-job-name={job?.name ?? ''}
      tabIndex={0}
      role="button"
      onClick={() => actions.openRun(run.id)}
      onKeyDown={e => (e.key === 'Enter' ? actions.openRun(run.id) : undefined)}
      title={_('Open run of “%1” (%2)', name, label)}
    >
      <div className="jp-sched-row-main">
        <StatusIcon status={run.status} label={label} />
        <span className="jp-sched-row-name">{name}</span>
        <OwnerLabel owner={run.owner} model={model} _={_} />
        <span className="jp-sched-row-aside">
          {run.status === 'running' ? formatProgress(run, _) : formatDuration(run.duration_seconds)}
        </span>
      </div>
      <div className="jp-sched-row-sub">
        <span className="jp-sched-run-status">{label}</span> · {runTriggerLabel(run.trigger, _)}
        {run.attempt > 1 ? ` · ${_('attempt %1', run.attempt)}` : ''} ·{' '}
        <span title={formatTime(run.started_at ?? run.queued_at)}>
          {formatRelative(run.started_at ?? run.queued_at, now, _)}
        </span>
      </div>
      {run.status === 'running' && <ProgressBar run={run} label={formatProgress(run, _)} />}
      <RunThumbnail
        run={run}
        url={id => model.api.thumbnailUrl(id)}
        label={_('output of “%1”', name)}
      />
    </li>
  );
}
