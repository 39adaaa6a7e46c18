/** The view of one job in the main area: its state, statistics, runs, webhook and settings. */
import { Dialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  ApiError,
  BackfillPreview,
  BackfillRequest,
  Job,
  JobStats,
  Run,
  SchedAPI,
  WebhookToken
} from './api';
import { CopyField, DurationChart } from './components';
import { ParametersTable, RunTable, SettingRow } from './detailparts';
import { formatDuration, formatRate, formatRelative, formatTime, jobStatusLabel } from './format';
import type { Gettext } from './i18n';
import { SetAsideBanner } from './joberror';
import { DetailActions, LiveView, errorText } from './liveview';
import { inFlight } from './polling';
import { ValuesSection } from './valuechart';

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

  /** The token just created or rotated: shown once, until the view closes. */
  webhookToken: WebhookToken | null = null;

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

  render(): JSX.Element {
    if (!this.data) {
      return this.loading();
    }
    const _ = this._;
    const { job, stats, runs } = this.data;
    const now = Date.now();
    return (
      <div className="jp-sched-detail-body" data-job-id={job.id}>
        {this.banner()}
        <JobHeader job={job} now={now} actions={this.actions} on={this.handlers(job)} _={_} />
        <StatsSection stats={stats} runs={runs} now={now} _={_} />
        <ValuesSection runs={runs} _={_} />
        <section className="jp-sched-detail-section" data-section="runs">
          <h2>{_('Run history')}</h2>
          <RunTable
            runs={runs}
            actions={this.actions}
            thumbnailUrl={id => this.api.thumbnailUrl(id)}
            now={now}
            _={_}
          />
        </section>
        <WebhookSection
          job={job}
          token={this.webhookToken}
          create={() => void this.createWebhook(job)}
          remove={() => void this.deleteWebhook(job)}
          _={_}
        />
        <SettingsSection job={job} _={_} />
      </div>
    );
  }

  /** What the header's buttons do. */
  private handlers(job: Job): HeaderHandlers {
    return {
      runNow: () =>
        void this.act(async () => {
          const run = await this.api.runJob(job.id);
          this.actions.openRun(run.id);
        }),
      pause: () => void this.act(() => this.api.pauseJob(job.id)),
      resume: () => void this.act(() => this.api.resumeJob(job.id)),
      edit: () => void this.actions.editJob(job).then(() => this.reload()),
      backfill: () => void this.backfill(job),
      remove: () => void this.remove(job)
    };
  }

  /** Ask for a range, show what it holds, and backfill it: one run per fire, one batch. */
  private async backfill(job: Job): Promise<void> {
    const _ = this._;
    const form = new BackfillForm(this.api, job.id, _);
    const answer = await showDialog({
      title: _('Backfill “%1”', job.name),
      body: form,
      buttons: [
        Dialog.cancelButton({ label: _('Cancel') }),
        Dialog.okButton({ label: _('Backfill') })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    await this.act(async () => {
      const batch = await this.api.backfill(job.id, form.request());
      this.actions.changed();
      this.actions.openBatch(job.id, batch.id);
    });
  }

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
}

interface HeaderHandlers {
  runNow(): void;
  pause(): void;
  resume(): void;
  edit(): void;
  backfill(): void;
  remove(): void;
}

/** The job's name and state, its notebook, trigger and next run, and its actions. */
function JobHeader(props: {
  job: Job;
  now: number;
  actions: DetailActions;
  on: HeaderHandlers;
  _: Gettext;
}): JSX.Element {
  const { job, now, actions, on, _ } = props;
  const paused = job.status !== 'active';
  return (
    <header className="jp-sched-detail-header">
      <h1>
        {job.name}{' '}
        <span className={`jp-sched-pill jp-sched-pill-${job.status}`} data-job-status={job.status}>
          {jobStatusLabel(job.status, _)}
        </span>
      </h1>
      <SetAsideBanner job={job} _={_} />
      <div className="jp-sched-detail-sub">
        <a href="#" onClick={e => (e.preventDefault(), actions.openNotebook(job.notebook))}>
          {job.notebook}
        </a>{' '}
        · <span data-field="trigger">{job.trigger_description}</span>
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
      <JobActions paused={paused} on={on} _={_} />
    </header>
  );
}

function JobActions(props: { paused: boolean; on: HeaderHandlers; _: Gettext }): JSX.Element {
  const { paused, on, _ } = props;
  return (
    <div className="jp-sched-actions">
      <button
        className="jp-mod-styled jp-mod-accept jp-sched-button"
        data-action="run-now"
        onClick={on.runNow}
      >
        {_('Run now')}
      </button>
      {paused ? (
        <button className="jp-mod-styled jp-sched-button" data-action="resume" onClick={on.resume}>
          {_('Resume')}
        </button>
      ) : (
        <button className="jp-mod-styled jp-sched-button" data-action="pause" onClick={on.pause}>
          {_('Pause')}
        </button>
      )}
      <button className="jp-mod-styled jp-sched-button" data-action="edit" onClick={on.edit}>
        {_('Edit…')}
      </button>
      <button
        className="jp-mod-styled jp-sched-button"
        data-action="backfill"
        onClick={on.backfill}
      >
        {_('Backfill…')}
      </button>
      <button
        className="jp-mod-styled jp-mod-warn jp-sched-button"
        data-action="delete"
        onClick={on.remove}
      >
        {_('Delete…')}
      </button>
    </div>
  );
}

function StatsSection(props: {
  stats: JobStats;
  runs: Run[];
  now: number;
  _: Gettext;
}): JSX.Element {
  const { stats, runs, now, _ } = props;
  return (
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
  );
}

/** The job's webhook: on or off, the token just made (shown once), create, rotate, turn off. */
function WebhookSection(props: {
  job: Job;
  token: WebhookToken | null;
  create: () => void;
  remove: () => void;
  _: Gettext;
}): JSX.Element {
  const { job, token, create, remove, _ } = props;
  return (
    <section className="jp-sched-detail-section" data-section="webhook">
      <h2>{_('Webhook')}</h2>
      <p className="jp-sched-muted" data-field="webhook-state">
        {job.webhook
          ? _('On: a POST to the webhook URL with the token runs this job.')
          : _('Off: create a URL that runs this job from outside Jupyter, with a token.')}
      </p>
      {token && job.webhook && (
        <div className="jp-sched-webhook-token" data-field="webhook-token">
          <div>
            <CopyField value={token.url} label={_('webhook URL')} name="webhook-url" _={_} />
          </div>
          <div>
            <CopyField value={token.token} label={_('token')} name="webhook-secret" _={_} />
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
          onClick={create}
        >
          {job.webhook ? _('Rotate token') : _('Create webhook URL')}
        </button>
        {job.webhook && (
          <button
            className="jp-mod-styled jp-mod-warn jp-sched-button"
            data-action="delete-webhook"
            onClick={remove}
          >
            {_('Turn off')}
          </button>
        )}
      </div>
    </section>
  );
}

function SettingsSection({ job, _ }: { job: Job; _: Gettext }): JSX.Element {
  return (
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
  );
}

/** The body of the backfill dialog: a range, and what it holds (asked as it changes). */
class BackfillForm extends ReactWidget {
  constructor(
    private api: SchedAPI,
    private jobId: string,
    private _: Gettext
  ) {
    super();
    this.addClass('jp-sched-backfill-form');
    const day = 24 * 3600 * 1000;
    this.start = new Date(Date.now() - 7 * day).toISOString().slice(0, 10) + 'T00:00';
    this.end = new Date(Date.now() - day).toISOString().slice(0, 10) + 'T23:59';
    void this.refresh();
  }

  start: string;
  end: string;
  maxParallel = '';
  preview: BackfillPreview | null = null;
  problem = '';

  /** The request of the range entered (local times, sent with their offset). */
  request(): BackfillRequest {
    const parallel = Number(this.maxParallel);
    return {
      start: new Date(this.start).toISOString(),
      end: new Date(this.end).toISOString(),
      max_parallel: this.maxParallel && parallel > 0 ? parallel : null
    };
  }

  private async refresh(): Promise<void> {
    try {
      this.preview = await this.api.backfillPreview(this.jobId, this.request());
      this.problem = '';
    } catch (error) {
      this.preview = null;
      this.problem = errorText(error);
    }
    this.update();
  }

  private set(change: Partial<Pick<BackfillForm, 'start' | 'end' | 'maxParallel'>>): void {
    Object.assign(this, change);
    void this.refresh();
  }

  render(): JSX.Element {
    const _ = this._;
    const preview = this.preview;
    return (
      <div className="jp-sched-form">
        <label>
          {_('From')}{' '}
          <input
            type="datetime-local"
            name="start"
            value={this.start}
            onChange={e => this.set({ start: e.target.value })}
          />
        </label>
        <label>
          {_('To')}{' '}
          <input
            type="datetime-local"
            name="end"
            value={this.end}
            onChange={e => this.set({ end: e.target.value })}
          />
        </label>
        <label>
          {_('At most at once')}{' '}
          <input
            type="number"
            name="max_parallel"
            min={1}
            value={this.maxParallel}
            onChange={e => this.set({ maxParallel: e.target.value })}
          />
        </label>
        <div className="jp-sched-muted" data-field="backfill-preview" role="status">
          {this.problem ||
            (preview
              ? preview.count
                ? _(
                    '%1 fires (%2 runs), from %3 to %4',
                    preview.count,
                    preview.runs,
                    preview.first ? formatTime(preview.first) : '',
                    preview.last ? formatTime(preview.last) : '…'
                  )
                : _('No fire of the schedule in this range.')
              : _('Counting the fires…'))}
        </div>
      </div>
    );
  }
}
