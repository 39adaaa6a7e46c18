/**
 * The view of one run in the main area: its status and progress, error, timings, the runs
 * that caused it and its earlier attempts, parameters, recorded values and the tail of its
 * log.
 */
import { MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { Job, Run, SchedAPI } from './api';
import { ProgressBar, StatusBadge, StatusIcon } from './components';
import { ParametersTable, SettingRow } from './detailparts';
import { formatDuration, formatProgress, formatTime, runTriggerLabel, statusLabel } from './format';
import type { Gettext } from './i18n';
import { DetailActions, LiveView, errorText } from './liveview';
import { inFlight } from './polling';
import { RunValuesSection } from './runvalues';
import { FINAL } from './statuses';

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

/** At most this many earlier attempts and causes are fetched. */
const MAX_LINKED = 20;

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
  /** Set when new log text arrived: the log scrolls to its end at the next render. */
  logFollow = false;
  private logOffset = 0;
  private logDone = false;
  /** Runs that change no more, by id. */
  private linked = new Map<string, Run>();

  protected async load(): Promise<RunData> {
    const run = await this.api.getRun(this.runId);
    const job = run.job_id ? await this.api.getJob(run.job_id).catch(() => null) : null;
    const chain = await this.attempts(run);
    const causes = await this.causes(run);
    await this.tailLog(FINAL.has(run.status));
    if (this.parent instanceof MainAreaWidget) {
      this.parent.title.label = this._('Run of %1', job?.name ?? run.notebook.split('/').pop());
    }
    return { run, job, chain, causes };
  }

  protected live(data: RunData): boolean {
    return !FINAL.has(data.run.status) || !this.logDone;
  }
  protected following(data: RunData): boolean {
    return inFlight([data.run.status]);
  }

  /** The runs `run` retries, newest first (an attempt that was retried has ended). */
  private async attempts(run: Run): Promise<Run[]> {
    const chain: Run[] = [];
    let previous = run.retry_of;
    while (previous && chain.length < MAX_LINKED) {
      let older = this.linked.get(previous);
      if (!older) {
        older = await this.api.getRun(previous);
        this.linked.set(previous, older);
      }
      chain.push(older);
      previous = older.retry_of;
    }
    return chain;
  }

  /** The upstream runs that caused `run`, those that are still readable. */
  private async causes(run: Run): Promise<Run[]> {
    const causes: Run[] = [];
    for (const id of (run.caused_by ?? []).slice(0, MAX_LINKED)) {
      let cause = this.linked.get(id);
      if (!cause) {
        cause = await this.api.getRun(id).catch(() => undefined);
        if (cause && FINAL.has(cause.status)) {
          this.linked.set(id, cause);
        }
      }
      if (cause) {
        causes.push(cause);
      }
    }
    return causes;
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
      const blob = await this.api.runOutputFile(run.id, 'html');
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

  /** Open the run's PDF in the browser's viewer, in a new tab (the server hands it over
   * as a sandboxed download; a blob of it is a document the viewer shows). */
  private async openPdf(run: Run): Promise<void> {
    // Opened before the fetch, while the click still allows a new window.
    const tab = window.open('', '_blank');
    try {
      const blob = await this.api.runOutputFile(run.id, 'pdf');
      const url = URL.createObjectURL(new Blob([blob], { type: 'application/pdf' }));
      if (tab) {
        tab.location.href = url;
      } else {
        window.open(url, '_blank');
      }
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (error) {
      tab?.close();
      Notification.error(errorText(error), { autoClose: 8000 });
    }
  }

  render(): JSX.Element {
    if (!this.data) {
      return this.loading();
    }
    const _ = this._;
    const { run, job, chain, causes } = this.data;
    const finished = FINAL.has(run.status);
    return (
      <div className="jp-sched-detail-body" data-run-id={run.id} data-status={run.status}>
        {this.banner()}
        <RunHeader run={run} job={job} actions={this.actions} on={this.handlers(run)} _={_} />
        {run.error && (
          <ErrorSection
            error={run.error}
            openAt={cell => void this.actions.openOutput(run, cell)}
            _={_}
          />
        )}
        <TimingsSection run={run} now={Date.now()} _={_} />
        {run.caused_by && run.caused_by.length > 0 && (
          <CausesSection
            ids={run.caused_by}
            causes={causes}
            actions={this.actions}
            jobNames={this.actions.jobNames()}
            _={_}
          />
        )}
        {(chain.length > 0 || run.attempt > 1) && (
          <AttemptsSection run={run} chain={chain} actions={this.actions} _={_} />
        )}
        <section className="jp-sched-detail-section" data-section="parameters">
          <h2>{_('Parameters')}</h2>
          <ParametersTable values={run.parameters} _={_} />
        </section>
        <RunValuesSection values={run.values} _={_} />
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

  /** What the header's buttons do. */
  private handlers(run: Run): HeaderHandlers {
    return {
      cancel: () => void this.act(() => this.api.cancelRun(run.id)),
      rerun: () =>
        void this.act(async () => {
          const again = await this.api.rerun(run.id);
          this.actions.openRun(again.id);
        }),
      openOutput: () => void this.actions.openOutput(run),
      downloadHtml: () => void this.downloadHtml(run),
      openPdf: () => void this.openPdf(run),
      compareWithPrevious: () => void this.compareWithPrevious(run)
    };
  }

  /** Compare with the job's newest earlier run that has an output. */
  private async compareWithPrevious(run: Run): Promise<void> {
    await this.act(async () => {
      if (!run.job_id) {
        return;
      }
      const page = await this.api.listRuns({ job_id: run.job_id, limit: 200 });
      const previous = page.runs.find(
        r => r.id < run.id && r.started_at !== null && FINAL.has(r.status) && r.status !== 'skipped'
      );
      if (!previous) {
        throw new Error(this._('This run has no earlier run with an output to compare with.'));
      }
      this.actions.openCompare(previous.id, run.id);
    });
  }
}

interface HeaderHandlers {
  cancel(): void;
  rerun(): void;
  openOutput(): void;
  downloadHtml(): void;
  openPdf(): void;
  compareWithPrevious(): void;
}

/** The run's status, job, notebook, trigger and attempt, its progress and its actions. */
function RunHeader(props: {
  run: Run;
  job: Job | null;
  actions: DetailActions;
  on: HeaderHandlers;
  _: Gettext;
}): JSX.Element {
  const { run, job, actions, on, _ } = props;
  return (
    <header className="jp-sched-detail-header">
      <h1>
        <StatusBadge status={run.status} label={statusLabel(run.status, _)} />{' '}
        {job ? (
          <a href="#" onClick={e => (e.preventDefault(), actions.openJob(job.id))}>
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
      <RunActions run={run} on={on} _={_} />
    </header>
  );
}

/** Cancel (while in flight), run again, open the output, and the output's other actions. */
function RunActions(props: { run: Run; on: HeaderHandlers; _: Gettext }): JSX.Element {
  const { run, on, _ } = props;
  const finished = FINAL.has(run.status);
  const hasOutput = finished && run.status !== 'skipped' && run.started_at !== null;
  return (
    <div className="jp-sched-actions">
      {!finished && (
        <button
          className="jp-mod-styled jp-mod-warn jp-sched-button"
          data-action="cancel"
          onClick={on.cancel}
        >
          {_('Cancel run')}
        </button>
      )}
      <button className="jp-mod-styled jp-sched-button" data-action="rerun" onClick={on.rerun}>
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
        onClick={on.openOutput}
      >
        {_('Open output')}
      </button>
      <OutputActions run={run} hasOutput={hasOutput} on={on} _={_} />
    </div>
  );
}

/** Compare with the job's previous run, download the HTML, open the PDF (those it has). */
function OutputActions(props: {
  run: Run;
  hasOutput: boolean;
  on: HeaderHandlers;
  _: Gettext;
}): JSX.Element {
  const { run, hasOutput, on, _ } = props;
  return (
    <>
      {run.job_id && (
        <button
          className="jp-mod-styled jp-sched-button"
          data-action="compare-previous"
          disabled={!hasOutput}
          onClick={on.compareWithPrevious}
        >
          {_('Compare with previous')}
        </button>
      )}
      {run.output_formats.includes('html') && (
        <button
          className="jp-mod-styled jp-sched-button"
          data-action="download-html"
          disabled={!hasOutput}
          onClick={on.downloadHtml}
        >
          {_('Download HTML')}
        </button>
      )}
      {run.has_pdf && (
        <button
          className="jp-mod-styled jp-sched-button"
          data-action="open-pdf"
          onClick={on.openPdf}
        >
          {_('Open PDF')}
        </button>
      )}
    </>
  );
}

/** The run's error, and a button that opens the executed notebook at the failing cell. */
function ErrorSection(props: {
  error: NonNullable<Run['error']>;
  openAt: (cell: number) => void;
  _: Gettext;
}): JSX.Element {
  const { error, openAt, _ } = props;
  const cell = error.cell_index;
  return (
    <section
      className="jp-sched-detail-section jp-sched-run-error"
      data-section="error"
      role="alert"
    >
      <h2>{_('Error')}</h2>
      <div className="jp-sched-error-box">
        <div>
          <strong data-field="ename">{error.ename}</strong>:{' '}
          <span data-field="evalue">{error.evalue}</span>
        </div>
        {cell !== null && (
          <div className="jp-sched-error-cell">
            {_('in cell %1 of the executed notebook', cell + 1)}{' '}
            <button
              className="jp-mod-styled jp-mod-accept jp-sched-button"
              data-action="open-failing-cell"
              onClick={() => openAt(cell)}
            >
              {_('Open at the failing cell')}
            </button>
          </div>
        )}
      </div>
    </section>
  );
}

function TimingsSection(props: { run: Run; now: number; _: Gettext }): JSX.Element {
  const { run, now, _ } = props;
  return (
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
                ? _('%1 so far', formatDuration((now - new Date(run.started_at).getTime()) / 1000))
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
  );
}

/** Links to the upstream runs that started this one. */
function CausesSection(props: {
  ids: string[];
  causes: Run[];
  actions: DetailActions;
  jobNames: Record<string, string>;
  _: Gettext;
}): JSX.Element {
  const { ids, causes, actions, jobNames, _ } = props;
  return (
    <section className="jp-sched-detail-section" data-section="caused-by">
      <h2>{_('Caused by')}</h2>
      <ul className="jp-sched-chain">
        {ids.map(id => {
          const cause = causes.find(r => r.id === id);
          const name = cause?.job_id
            ? (jobNames[cause.job_id] ?? cause.notebook)
            : (cause?.notebook ?? id);
          return (
            <li key={id}>
              <a
                href="#"
                data-caused-by={id}
                onClick={e => (e.preventDefault(), actions.openRun(id))}
              >
                {cause && (
                  <>
                    <StatusIcon status={cause.status} label={statusLabel(cause.status, _)} />{' '}
                  </>
                )}
                {cause ? _('run of %1: %2', name, statusLabel(cause.status, _)) : _('run %1', id)}
              </a>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** This attempt and the earlier ones it retries, newest first. */
function AttemptsSection(props: {
  run: Run;
  chain: Run[];
  actions: DetailActions;
  _: Gettext;
}): JSX.Element {
  const { run, chain, actions, _ } = props;
  return (
    <section className="jp-sched-detail-section" data-section="attempts">
      <h2>{_('Attempts')}</h2>
      <ol className="jp-sched-chain" reversed>
        <li>
          <StatusIcon status={run.status} label={statusLabel(run.status, _)} />{' '}
          {_('attempt %1 (this run)', run.attempt)}
        </li>
        {chain.map(r => (
          <li key={r.id}>
            <a href="#" onClick={e => (e.preventDefault(), actions.openRun(r.id))}>
              <StatusIcon status={r.status} label={statusLabel(r.status, _)} />{' '}
              {_('attempt %1: %2', r.attempt, statusLabel(r.status, _))}
            </a>
            {r.error ? ` — ${r.error.ename}: ${r.error.evalue}` : ''}
          </li>
        ))}
      </ol>
    </section>
  );
}
