/** The view of one batch (a sweep's fire, a backfill): its progress and its summary table. */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { Batch, RunStatus, SchedAPI, Summary, SummaryRow } from './api';
import { StatusIcon } from './components';
import { formatDuration, formatTime, statusLabel } from './format';
import type { Gettext } from './i18n';
import { DetailActions, LiveView } from './liveview';

/** "12/20 done, 1 failed": a batch's progress in words. */
export function batchProgressText(batch: Batch, _: Gettext): string {
  const { done, failed } = batch.progress;
  const text = _('%1/%2 done', done, batch.total);
  return failed ? `${text}, ${_('%1 failed', failed)}` : text;
}

/** A JSON value as a table cell shows it. */
function cell(value: unknown): string {
  if (value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export class BatchView extends LiveView<Summary> {
  constructor(
    readonly jobId: string,
    readonly batchId: string,
    api: SchedAPI,
    actions: DetailActions,
    trans: TranslationBundle
  ) {
    super(api, actions, trans);
    this.addClass('jp-sched-detail');
    this.addClass('jp-sched-batch-detail');
  }

  protected load(): Promise<Summary> {
    return this.api.summary(this.jobId, { batch: this.batchId });
  }

  protected live(data: Summary): boolean {
    return !data.batch || data.batch.progress.done < data.batch.total;
  }

  protected following(data: Summary): boolean {
    return this.live(data);
  }

  render(): JSX.Element {
    if (!this.data) {
      return this.loading();
    }
    const _ = this._;
    const { batch } = this.data;
    const name = this.actions.jobNames()[this.jobId] ?? this.jobId;
    return (
      <div className="jp-sched-detail-body" data-batch-id={this.batchId}>
        {this.banner()}
        <header className="jp-sched-detail-header">
          <h1>
            {batch?.kind === 'backfill' ? _('Backfill of “%1”', name) : _('Sweep of “%1”', name)}
          </h1>
          <div className="jp-sched-detail-sub" data-field="batch-progress">
            {batch ? batchProgressText(batch, _) : ''} ·{' '}
            <a href={this.api.summaryCsvUrl(this.jobId, this.batchId)} download>
              {_('Download CSV')}
            </a>
          </div>
        </header>
        <section className="jp-sched-detail-section" data-section="summary">
          <SummaryTable summary={this.data} openRun={id => this.actions.openRun(id)} _={_} />
        </section>
      </div>
    );
  }
}

/** The batch's runs as rows: index, status, date, duration, then parameters and values. */
function SummaryTable(props: {
  summary: Summary;
  openRun: (id: string) => void;
  _: Gettext;
}): JSX.Element {
  const { summary, openRun, _ } = props;
  const { parameters, values, rows } = summary;
  return (
    <table className="jp-sched-table jp-sched-summary">
      <thead>
        <tr>
          <th>#</th>
          <th>{_('Status')}</th>
          <th>{_('Scheduled for')}</th>
          <th>{_('Duration')}</th>
          {parameters.map(p => (
            <th key={`p-${p}`} data-parameter={p}>
              {p}
            </th>
          ))}
          {values.map(v => (
            <th key={`v-${v}`} data-value={v} className="jp-sched-summary-value">
              {v}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map(row => (
          <SummaryTableRow
            key={row.run_id}
            row={row}
            parameters={parameters}
            values={values}
            openRun={openRun}
            _={_}
          />
        ))}
      </tbody>
    </table>
  );
}

/** One run of the summary; a click opens it. */
function SummaryTableRow(props: {
  row: SummaryRow;
  parameters: string[];
  values: string[];
  openRun: (id: string) => void;
  _: Gettext;
}): JSX.Element {
  const { row, parameters, values, openRun, _ } = props;
  const status = row.status as RunStatus;
  return (
    <tr data-run-id={row.run_id} data-status={row.status} onClick={() => openRun(row.run_id)}>
      <td>{row.batch_index + 1}</td>
      <td>
        <StatusIcon status={status} label={statusLabel(status, _)} /> {statusLabel(status, _)}
      </td>
      <td>{row.scheduled_for ? formatTime(row.scheduled_for) : ''}</td>
      <td>{formatDuration(row.duration_seconds)}</td>
      {parameters.map(p => (
        <td key={`p-${p}`}>{cell(row.parameters[p])}</td>
      ))}
      {values.map(v => (
        <td key={`v-${v}`} className="jp-sched-summary-value">
          {cell(row.values[v])}
        </td>
      ))}
    </tr>
  );
}
