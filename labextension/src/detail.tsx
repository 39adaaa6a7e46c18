/** The job detail and run detail views, opened in the main area. */
import { Dialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ApiError, FINISHED, Job, JobStats, Run, SchedAPI, WebhookToken } from './api';
import {
  CopyField,
  DurationChart,
  ProgressBar,
  StatusBadge,
  StatusIcon,
  schedIcon
} from './components';
import {
  formatDuration,
  formatProgress,
  formatRate,
  formatRelative,
  jobStatusLabel,
  runTriggerLabel,
  statusLabel
} from './format';
import { Gettext, describeTrigger, formatTime } from './triggers';
import { inFlight, nextPollDelay } from './polling';

/** What the detail views ask the rest of the extension to do. */
export interface DetailActions {
  openJob(id: string): void;
  openRun(id: string): void;
  editJob(job: Job): Promise<void>;
  /** Open the executed notebook of `run`, at cell `cell` when given. */
  openOutput(run: Run, cell?: number | null): Promise<void>;
  openNotebook(path: string): void;
  /** Job id → name, for the upstream jobs of `after` triggers. */
  jobNames(): Record<string, string>;
  /** The poll interval (ms) when nothing is in flight. */
  interval(): number;
  /** The poll interval (ms) while a run is queued or running. */
  followInterval(): number;
  /** Tell the panel to refresh now. */
  changed(): void;
}

function errorText(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

/** A ReactWidget that reloads its data every `interval()` ms while it is attached. */
abstract class LiveView<T> extends ReactWidget {
  constructor(
    protected api: SchedAPI,
    protected actions: DetailActions,
    protected trans: TranslationBundle
  ) {
    super();
    this._ = trans.__.bind(trans);
  }

  data: T | null = null;
  error: string | null = null;
  /** True while the server does not answer (the view keeps what it showed). */
  offline = false;

  protected abstract load(): Promise<T>;
  /** Whether to keep polling after this answer. */
  protected live(_data: T): boolean {
    return true;
  }
  /** Whether this answer shows something in flight (polled at the follow interval). */
  protected following(_data: T): boolean {
    return false;
  }

  async reload(): Promise<void> {
    window.clearTimeout(this._timer);
    if (this._held) {
      return;
    }
    const loading = this.load();
    this._loading = loading.catch(() => undefined);
    try {
      this.data = await loading;
      this.error = null;
      this.offline = false;
    } catch (error) {
      if (error instanceof ApiError && error.unreachable) {
        this.offline = true;
      } else {
        this.error = errorText(error);
      }
    }
    if (this.isDisposed) {
      return;
    }
    this.update();
    if (this.isAttached && !this._held && (!this.data || this.live(this.data) || this.offline)) {
      const delay = nextPollDelay(
        { interval: this.actions.interval(), follow: this.actions.followInterval() },
        !!this.data && !this.offline && this.following(this.data)
      );
      this._timer = window.setTimeout(() => void this.reload(), delay);
    }
  }

  /**
   * Stop polling until {@link resume}, once the load in flight has ended: while what the
   * view shows is being deleted, a poll would only get a 404.
   */
  protected async hold(): Promise<void> {
    this._held = true;
    window.clearTimeout(this._timer);
    await this._loading;
  }
  protected resume(): void {
    this._held = false;
    void this.reload();
  }

  protected onAfterAttach(): void {
    void this.reload();
  }
  protected onBeforeDetach(): void {
    window.clearTimeout(this._timer);
  }
  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  /** Run an action, then reload; errors become a notification. */
  protected async act(what: () => Promise<unknown>, done?: string): Promise<void> {
    try {
      await what();
      if (done) {
        Notification.success(done, { autoClose: 3000 });
      }
    } catch (error) {
      Notification.error(errorText(error), { autoClose: 8000 });
    }
    this.actions.changed();
    await this.reload();
  }

  protected banner(): JSX.Element | null {
    const _ = this._;
    if (this.offline) {
      return (
        <div className="jp-sched-banner jp-sched-banner-warn" role="status" data-banner="offline">
          {_('Cannot reach the server — retrying…')}
        </div>
      );
    }
    if (this.error) {
      return (
        <div className="jp-sched-banner jp-sched-banner-error" role="alert">
          {this.error}
        </div>
      );
    }
    return null;
  }

  protected _: Gettext;
  private _timer = 0;
  private _held = false;
  private _loading: Promise<unknown> = Promise.resolve();
}

// -- job detail ---------------------------------------------------------------------------

interface JobData {
  job: Job;
  stats: JobStats;
  runs: Run[];
}

export class JobView extends LiveView<JobData> {
  constructor(
    readonly jobId: string,
    api: SchedAPI,
    actions: DetailActions,
    trans: TranslationBundle
  ) {
    super(api, actions, trans);
    this.addClass('jp-sched-detail');
    this.addClass('jp-sched-job-detail');
  }

  protected async load(): Promise<JobData> {
    const [job, stats, runs] = await Promise.all([
      this.api.getJob(this.jobId),
      this.api.jobStats(this.jobId),
      this.api.listRuns({ job_id: this.jobId, limit: 50 })
    ]);
    if (this.parent instanceof MainAreaWidget) {
      this.parent.title.label = job.name;
    }
    return { job, stats, runs: runs.runs };
  }

  protected following(data: JobData): boolean {
    return inFlight(data.runs.map(r => r.status));
  }

  /** The token just created or rotated: shown once, until the view closes. */
  webhookToken: WebhookToken | null = null;

  private async createWebhook(job: Job): Promise<void> {
    const _ = this._;
    if (job.webhook) {
      const answer = await showDialog({
        title: _('Rotate the webhook token of “%1”?', job.name),
        body: _('The current token stops working at once; callers need the new one.'),
        buttons: [
          Dialog.cancelButton({ label: _('Cancel') }),
          Dialog.warnButton({ label: _('Rotate token') })
        ]
      });
      if (!answer.button.accept) {
        return;
      }
    }
    await this.act(async () => {
      this.webhookToken = await this.api.createWebhook(job.id);
    });
  }

  private async deleteWebhook(job: Job): Promise<void> {
    await this.act(
      async () => {
        await this.api.deleteWebhook(job.id);
        this.webhookToken = null;
      },
      this._('The webhook of “%1” is off.', job.name)
    );
  }

  private async remove(job: Job): Promise<void> {
    const _ = this._;
    const answer = await showDialog({
      title: _('Delete “%1”?', job.name),
      body: _(
        'The job, its %1 runs and their outputs and logs are deleted. This cannot be undone.',
        this.data?.stats.runs ?? 0
      ),
      buttons: [
        Dialog.cancelButton({ label: _('Cancel') }),
        Dialog.warnButton({ label: _('Delete') })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    await this.hold();
    try {
      if (!(await this.deleteJob(job))) {
        this.resume();
        return;
      }
      Notification.success(_('Deleted “%1”.', job.name), { autoClose: 3000 });
      this.actions.changed();
      this.parent?.dispose();
    } catch (error) {
      Notification.error(errorText(error), { autoClose: 8000 });
      this.resume();
    }
  }

  /**
   * Delete `job`; false when the user keeps it after all. Jobs that run after it make the
   * server refuse (409, naming them), since deleting it changes what they wait for: the
   * user sees which and decides.
   */
  private async deleteJob(job: Job): Promise<boolean> {
    const _ = this._;
    try {
      await this.api.deleteJob(job.id);
      return true;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) {
        throw error;
      }
      const answer = await showDialog({
        title: _('Other jobs run after “%1”', job.name),
        body: (
          <div data-dialog="delete-dependents">
            <p>{error.message}</p>
            <p>
              {_(
                'Deleted anyway, they no longer wait for it; a job left with no other job to wait for runs only by hand.'
              )}
            </p>
          </div>
        ),
        buttons: [
          Dialog.cancelButton({ label: _('Cancel') }),
          Dialog.warnButton({ label: _('Delete anyway') })
        ]
      });
      if (!answer.button.accept) {
        return false;
      }
    }
    await this.api.deleteJob(job.id, { force: true });
    return true;
  }

  render(): JSX.Element {
    const _ = this._;
    if (!this.data) {
      return (
        <div className="jp-sched-detail-body">
          {this.banner() ?? <div className="jp-sched-muted">{_('Loading…')}</div>}
        </div>
      );
    }
    const { job, stats, runs } = this.data;
    const now = Date.now();
    const paused = job.status !== 'active';
    return (
      <div className="jp-sched-detail-body" data-job-id={job.id}>
        {this.banner()}
        <header className="jp-sched-detail-header">
          <h1>
            {job.name}{' '}
            <span
              className={`jp-sched-pill jp-sched-pill-${job.status}`}
              data-job-status={job.status}
            >
              {jobStatusLabel(job.status, _)}
            </span>
          </h1>
          {job.status === 'error' && (
            <div
              className="jp-sched-banner jp-sched-banner-error"
              role="alert"
              data-field="job-error"
            >
              {_(
                'Set aside by the scheduler: %1. Resume the job or change its trigger to schedule it again.',
                job.error ?? _('no reason given')
              )}
            </div>
          )}
          <div className="jp-sched-detail-sub">
            <a
              href="#"
              onClick={e => (e.preventDefault(), this.actions.openNotebook(job.notebook))}
            >
              {job.notebook}
            </a>{' '}
            ·{' '}
            <span data-field="trigger">
              {describeTrigger(job.trigger, _, undefined, this.actions.jobNames())}
            </span>
            {!paused && job.next_fire_at && (
              <span data-field="next-fire">
                {' '}
                ·{' '}
                {_(
                  'next run %1 (%2)',
                  formatRelative(job.next_fire_at, now, _),
                  formatTime(job.next_fire_at)
                )}
              </span>
            )}
          </div>
          <div className="jp-sched-actions">
            <button
              className="jp-mod-styled jp-mod-accept jp-sched-button"
              data-action="run-now"
              onClick={() =>
                void this.act(async () => {
                  const run = await this.api.runJob(job.id);
                  this.actions.openRun(run.id);
                })
              }
            >
              {_('Run now')}
            </button>
            {paused ? (
              <button
                className="jp-mod-styled jp-sched-button"
                data-action="resume"
                onClick={() => void this.act(() => this.api.resumeJob(job.id))}
              >
                {_('Resume')}
              </button>
            ) : (
              <button
                className="jp-mod-styled jp-sched-button"
                data-action="pause"
                onClick={() => void this.act(() => this.api.pauseJob(job.id))}
              >
                {_('Pause')}
              </button>
            )}
            <button
              className="jp-mod-styled jp-sched-button"
              data-action="edit"
              onClick={() => void this.actions.editJob(job).then(() => this.reload())}
            >
              {_('Edit…')}
            </button>
            <button
              className="jp-mod-styled jp-mod-warn jp-sched-button"
              data-action="delete"
              onClick={() => void this.remove(job)}
            >
              {_('Delete…')}
            </button>
          </div>
        </header>
        <section className="jp-sched-detail-section" data-section="stats">
          <h2>{_('Statistics')}</h2>
          <dl className="jp-sched-stats">
            <div>
              <dt>{_('runs')}</dt>
              <dd data-stat="runs">{stats.runs}</dd>
            </div>
            <div>
              <dt>{_('success rate')}</dt>
              <dd data-stat="success-rate">{formatRate(stats.success_rate)}</dd>
            </div>
            <div>
              <dt>{_('failed')}</dt>
              <dd data-stat="failed">{stats.failed}</dd>
            </div>
            <div>
              <dt>{_('median duration')}</dt>
              <dd>{formatDuration(stats.duration_p50_seconds)}</dd>
            </div>
            <div>
              <dt>{_('95th percentile')}</dt>
              <dd>{formatDuration(stats.duration_p95_seconds)}</dd>
            </div>
            <div>
              <dt>{_('last success')}</dt>
              <dd>{formatRelative(stats.last_success_at, now, _)}</dd>
            </div>
          </dl>
          <DurationChart runs={runs} median={stats.duration_p50_seconds} _={_} />
        </section>
        <section className="jp-sched-detail-section" data-section="runs">
          <h2>{_('Run history')}</h2>
          <RunTable runs={runs} actions={this.actions} now={now} _={_} />
        </section>
        <section className="jp-sched-detail-section" data-section="webhook">
          <h2>{_('Webhook')}</h2>
          <p className="jp-sched-muted" data-field="webhook-state">
            {job.webhook
              ? _('On: a POST to the webhook URL with the token runs this job.')
              : _('Off: create a URL that runs this job from outside Jupyter, with a token.')}
          </p>
          {this.webhookToken && job.webhook && (
            <div className="jp-sched-webhook-token" data-field="webhook-token">
              <div>
                <CopyField
                  value={this.webhookToken.url}
                  label={_('webhook URL')}
                  name="webhook-url"
                  _={_}
                />
              </div>
              <div>
                <CopyField
                  value={this.webhookToken.token}
                  label={_('token')}
                  name="webhook-secret"
                  _={_}
                />
              </div>
              <p className="jp-sched-warning" role="note">
                {_(
                  'Copy the token now: it is shown only this once. Send it as “Authorization: Bearer <token>”.'
                )}
              </p>
            </div>
          )}
          <div className="jp-sched-actions">
            <button
              className="jp-mod-styled jp-sched-button"
              data-action={job.webhook ? 'rotate-webhook' : 'create-webhook'}
              onClick={() => void this.createWebhook(job)}
            >
              {job.webhook ? _('Rotate token') : _('Create webhook URL')}
            </button>
            {job.webhook && (
              <button
                className="jp-mod-styled jp-mod-warn jp-sched-button"
                data-action="delete-webhook"
                onClick={() => void this.deleteWebhook(job)}
              >
                {_('Turn off')}
              </button>
            )}
          </div>
        </section>
        <section className="jp-sched-detail-section" data-section="settings">
          <h2>{_('Settings')}</h2>
          <table className="jp-sched-table jp-sched-settings">
            <tbody>
              <SettingRow label={_('parameters')}>
                <ParametersTable values={job.parameters} _={_} />
              </SettingRow>
              <SettingRow label={_('kernel')}>{job.kernel ?? _('the notebook’s own')}</SettingRow>
              <SettingRow label={_('retries')}>
                {job.retries
                  ? _(
                      '%1, after %2 s × %3 per attempt',
                      job.retries,
                      job.retry_delay_seconds,
                      job.retry_backoff
                    )
                  : _('none')}
              </SettingRow>
              <SettingRow label={_('timeout')}>
                {job.timeout_seconds ? formatDuration(job.timeout_seconds) : _('none')}
              </SettingRow>
              <SettingRow label={_('overlap')}>{job.overlap}</SettingRow>
              <SettingRow label={_('missed fires')}>
                {job.misfire === 'skip' ? _('skip') : _('run once')}
              </SettingRow>
              <SettingRow label={_('outputs')}>{job.output_formats.join(', ')}</SettingRow>
              <SettingRow label={_('tags')}>{job.tags.join(', ') || '—'}</SettingRow>
              <SettingRow label={_('created')}>{formatTime(job.created_at)}</SettingRow>
              <SettingRow label={_('updated')}>{formatTime(job.updated_at)}</SettingRow>
              <SettingRow label={_('id')}>
                <code>{job.id}</code>
              </SettingRow>
            </tbody>
          </table>
        </section>
      </div>
    );
  }
}

function SettingRow(props: { label: string; children: React.ReactNode }): JSX.Element {
  return (
    <tr>
      <th scope="row">{props.label}</th>
      <td>{props.children}</td>
    </tr>
  );
}

function ParametersTable(props: { values: Record<string, unknown>; _: Gettext }): JSX.Element {
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

function RunTable(props: {
  runs: Run[];
  actions: DetailActions;
  now: number;
  _: Gettext;
}): JSX.Element {
  const { runs, actions, now, _ } = props;
  if (!runs.length) {
    return (
      <div className="jp-sched-muted">
        {_('No runs yet. Use Run now, or wait for the schedule.')}
      </div>
    );
  }
  return (
    <table className="jp-sched-table jp-sched-runs">
      <thead>
        <tr>
          <th>{_('status')}</th>
          <th>{_('started')}</th>
          <th>{_('trigger')}</th>
          <th>{_('duration')}</th>
          <th>{_('attempt')}</th>
        </tr>
      </thead>
      <tbody>
        {runs.map(run => (
          <tr
            key={run.id}
            data-run-id={run.id}
            data-status={run.status}
            className="jp-sched-clickable"
            tabIndex={0}
            onClick={() => actions.openRun(run.id)}
            onKeyDown={e => (e.key === 'Enter' ? actions.openRun(run.id) : undefined)}
          >
            <td>
              <StatusIcon status={run.status} label={statusLabel(run.status, _)} />{' '}
              {statusLabel(run.status, _)}
            </td>
            <td title={formatTime(run.started_at ?? run.queued_at)}>
              {formatRelative(run.started_at ?? run.queued_at, now, _)}
            </td>
            <td>{runTriggerLabel(run.trigger, _)}</td>
            <td>
              {run.status === 'running'
                ? formatProgress(run, _)
                : formatDuration(run.duration_seconds)}
            </td>
            <td>{run.attempt}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// -- run detail ---------------------------------------------------------------------------

interface RunData {
  run: Run;
  job: Job | null;
  /** The runs this one retries, newest first. */
  chain: Run[];
  /** The upstream runs that started this one (dependency runs). */
  causes: Run[];
}

/** How much of a log the view keeps (the tail). */
const LOG_LIMIT = 200_000;

export class RunView extends LiveView<RunData> {
  constructor(
    readonly runId: string,
    api: SchedAPI,
    actions: DetailActions,
    trans: TranslationBundle
  ) {
    super(api, actions, trans);
    this.addClass('jp-sched-detail');
    this.addClass('jp-sched-run-detail');
  }

  log = '';
  private logOffset = 0;
  private logDone = false;
  private chainCache = new Map<string, Run>();

  protected async load(): Promise<RunData> {
    const run = await this.api.getRun(this.runId);
    const job = run.job_id ? await this.api.getJob(run.job_id).catch(() => null) : null;
    const chain: Run[] = [];
    let previous = run.retry_of;
    while (previous && chain.length < 20) {
      let older = this.chainCache.get(previous);
      if (!older) {
        older = await this.api.getRun(previous);
        this.chainCache.set(previous, older);
      }
      chain.push(older);
      previous = older.retry_of;
    }
    const causes: Run[] = [];
    for (const id of (run.caused_by ?? []).slice(0, 20)) {
      let cause = this.chainCache.get(id);
      if (!cause) {
        cause = await this.api.getRun(id).catch(() => undefined);
        if (cause && FINISHED.has(cause.status)) {
          this.chainCache.set(id, cause);
        }
      }
      if (cause) {
        causes.push(cause);
      }
    }
    await this.tailLog(FINISHED.has(run.status));
    if (this.parent instanceof MainAreaWidget) {
      this.parent.title.label = this._('Run of %1', job?.name ?? run.notebook.split('/').pop());
    }
    return { run, job, chain, causes };
  }

  protected live(data: RunData): boolean {
    return !FINISHED.has(data.run.status) || !this.logDone;
  }
  protected following(data: RunData): boolean {
    return inFlight([data.run.status]);
  }

  /** Read the log from where the last read ended. */
  private async tailLog(finished: boolean): Promise<void> {
    if (this.logDone) {
      return;
    }
    for (let i = 0; i < 20; i++) {
      const { text, next } = await this.api.runLog(this.runId, this.logOffset);
      if (text) {
        this.log = (this.log + text).slice(-LOG_LIMIT);
        this.logFollow = true;
      }
      const more = next > this.logOffset && text.length > 0;
      this.logOffset = next;
      if (!more) {
        break;
      }
    }
    this.logDone = finished;
  }

  logFollow = false;

  protected onUpdateRequest(msg: Parameters<ReactWidget['onUpdateRequest']>[0]): void {
    super.onUpdateRequest(msg);
    if (this.logFollow) {
      this.logFollow = false;
      requestAnimationFrame(() => {
        const pre = this.node.querySelector('.jp-sched-log');
        if (pre) {
          pre.scrollTop = pre.scrollHeight;
        }
      });
    }
  }

  private async downloadHtml(run: Run): Promise<void> {
    try {
      const response = await this.api.fetch(
        `runs/${encodeURIComponent(run.id)}/output`,
        {},
        { format: 'html' }
      );
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${(run.notebook.split('/').pop() ?? 'output').replace(/\.ipynb$/, '')}-${run.id}.html`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      Notification.error(errorText(error), { autoClose: 8000 });
    }
  }

  render(): JSX.Element {
    const _ = this._;
    if (!this.data) {
      return (
        <div className="jp-sched-detail-body">
          {this.banner() ?? <div className="jp-sched-muted">{_('Loading…')}</div>}
        </div>
      );
    }
    const { run, job, chain, causes } = this.data;
    const now = Date.now();
    const finished = FINISHED.has(run.status);
    const hasOutput = finished && run.status !== 'skipped' && run.started_at !== null;
    const label = statusLabel(run.status, _);
    return (
      <div className="jp-sched-detail-body" data-run-id={run.id} data-status={run.status}>
        {this.banner()}
        <header className="jp-sched-detail-header">
          <h1>
            <StatusBadge status={run.status} label={label} />{' '}
            {job ? (
              <a href="#" onClick={e => (e.preventDefault(), this.actions.openJob(job.id))}>
                {job.name}
              </a>
            ) : (
              run.notebook
            )}
          </h1>
          <div className="jp-sched-detail-sub">
            {run.notebook} · {runTriggerLabel(run.trigger, _)} · {_('attempt %1', run.attempt)}
          </div>
          {run.status === 'running' && (
            <div className="jp-sched-running" data-field="progress">
              <ProgressBar run={run} label={formatProgress(run, _)} /> {formatProgress(run, _)}
            </div>
          )}
          <div className="jp-sched-actions">
            {!finished && (
              <button
                className="jp-mod-styled jp-mod-warn jp-sched-button"
                data-action="cancel"
                onClick={() => void this.act(() => this.api.cancelRun(run.id))}
              >
                {_('Cancel run')}
              </button>
            )}
            <button
              className="jp-mod-styled jp-sched-button"
              data-action="rerun"
              onClick={() =>
                void this.act(async () => {
                  const again = await this.api.rerun(run.id);
                  this.actions.openRun(again.id);
                })
              }
            >
              {_('Run again')}
            </button>
            <button
              className="jp-mod-styled jp-mod-accept jp-sched-button"
              data-action="open-output"
              disabled={!hasOutput}
              title={
                hasOutput
                  ? _('Open the executed notebook (read-only)')
                  : _('The output exists once the run ends.')
              }
              onClick={() => void this.actions.openOutput(run)}
            >
              {_('Open output')}
            </button>
            {run.output_formats.includes('html') && (
              <button
                className="jp-mod-styled jp-sched-button"
                data-action="download-html"
                disabled={!hasOutput}
                onClick={() => void this.downloadHtml(run)}
              >
                {_('Download HTML')}
              </button>
            )}
          </div>
        </header>
        {run.error && (
          <section
            className="jp-sched-detail-section jp-sched-run-error"
            data-section="error"
            role="alert"
          >
            <h2>{_('Error')}</h2>
            <div className="jp-sched-error-box">
              <div>
                <strong data-field="ename">{run.error.ename}</strong>:{' '}
                <span data-field="evalue">{run.error.evalue}</span>
              </div>
              {run.error.cell_index !== null && (
                <div className="jp-sched-error-cell">
                  {_('in cell %1 of the executed notebook', run.error.cell_index + 1)}{' '}
                  <button
                    className="jp-mod-styled jp-mod-accept jp-sched-button"
                    data-action="open-failing-cell"
                    onClick={() => void this.actions.openOutput(run, run.error?.cell_index)}
                  >
                    {_('Open at the failing cell')}
                  </button>
                </div>
              )}
            </div>
          </section>
        )}
        <section className="jp-sched-detail-section" data-section="timings">
          <h2>{_('Timings')}</h2>
          <table className="jp-sched-table jp-sched-settings">
            <tbody>
              {run.scheduled_for && (
                <SettingRow label={_('scheduled for')}>{formatTime(run.scheduled_for)}</SettingRow>
              )}
              <SettingRow label={_('queued')}>{formatTime(run.queued_at)}</SettingRow>
              <SettingRow label={_('started')}>{formatTime(run.started_at)}</SettingRow>
              <SettingRow label={_('finished')}>{formatTime(run.finished_at)}</SettingRow>
              <SettingRow label={_('duration')}>
                {run.duration_seconds !== null
                  ? formatDuration(run.duration_seconds)
                  : run.started_at
                    ? _(
                        '%1 so far',
                        formatDuration((now - new Date(run.started_at).getTime()) / 1000)
                      )
                    : '—'}
              </SettingRow>
              {run.worker_id && (
                <SettingRow label={_('worker')}>
                  <code>{run.worker_id}</code>
                </SettingRow>
              )}
            </tbody>
          </table>
        </section>
        {run.caused_by && run.caused_by.length > 0 && (
          <section className="jp-sched-detail-section" data-section="caused-by">
            <h2>{_('Caused by')}</h2>
            <ul className="jp-sched-chain">
              {run.caused_by.map(id => {
                const cause = causes.find(r => r.id === id);
                const name = cause?.job_id
                  ? (this.actions.jobNames()[cause.job_id] ?? cause.notebook)
                  : (cause?.notebook ?? id);
                return (
                  <li key={id}>
                    <a
                      href="#"
                      data-caused-by={id}
                      onClick={e => (e.preventDefault(), this.actions.openRun(id))}
                    >
                      {cause && (
                        <>
                          <StatusIcon
                            status={cause.status}
                            label={statusLabel(cause.status, _)}
                          />{' '}
                        </>
                      )}
                      {cause
                        ? _('run of %1: %2', name, statusLabel(cause.status, _))
                        : _('run %1', id)}
                    </a>
                  </li>
                );
              })}
            </ul>
          </section>
        )}
        {(chain.length > 0 || run.attempt > 1) && (
          <section className="jp-sched-detail-section" data-section="attempts">
            <h2>{_('Attempts')}</h2>
            <ol className="jp-sched-chain" reversed>
              <li>
                <StatusIcon status={run.status} label={label} />{' '}
                {_('attempt %1 (this run)', run.attempt)}
              </li>
              {chain.map(r => (
                <li key={r.id}>
                  <a href="#" onClick={e => (e.preventDefault(), this.actions.openRun(r.id))}>
                    <StatusIcon status={r.status} label={statusLabel(r.status, _)} />{' '}
                    {_('attempt %1: %2', r.attempt, statusLabel(r.status, _))}
                  </a>
                  {r.error ? ` — ${r.error.ename}: ${r.error.evalue}` : ''}
                </li>
              ))}
            </ol>
          </section>
        )}
        <section className="jp-sched-detail-section" data-section="parameters">
          <h2>{_('Parameters')}</h2>
          <ParametersTable values={run.parameters} _={_} />
        </section>
        <section className="jp-sched-detail-section" data-section="log">
          <h2>
            {_('Log')}
            {!finished && <span className="jp-sched-muted"> — {_('following')}</span>}
          </h2>
          <pre className="jp-sched-log" data-log>
            {this.log || (finished ? _('(empty)') : _('(waiting for output…)'))}
          </pre>
        </section>
      </div>
    );
  }
}

/** A main-area widget around a detail view. */
export function detailWidget(
  content: JobView | RunView,
  label: string
): MainAreaWidget<JobView | RunView> {
  const widget = new MainAreaWidget({ content });
  widget.id =
    content instanceof JobView
      ? `jupyter-sched-job-${content.jobId}`
      : `jupyter-sched-run-${content.runId}`;
  widget.title.label = label;
  widget.title.icon = schedIcon;
  widget.title.closable = true;
  return widget;
}
