/**
 * Two runs side by side: the parameters that differ and, cell by cell, what changed in
 * their executed notebooks (nbdime's diff, as the server pairs it), with changed outputs
 * (text, tables, images, errors) next to each other.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { SchedAPI, Schemas } from './api';
import type { Gettext } from './i18n';
import { DetailActions, LiveView } from './liveview';

export type RunComparison = Schemas['RunComparison'];
type CellChange = Schemas['CellChange'];
type OutputView = Schemas['OutputView'];

export class CompareView extends LiveView<RunComparison> {
  constructor(
    readonly runA: string,
    readonly runB: string,
    api: SchedAPI,
    actions: DetailActions,
    trans: TranslationBundle
  ) {
    super(api, actions, trans);
    this.addClass('jp-sched-detail');
    this.addClass('jp-sched-compare');
  }

  protected load(): Promise<RunComparison> {
    return this.api.compareRuns(this.runA, this.runB);
  }

  /** Two finished runs do not change: one answer is enough. */
  protected live(): boolean {
    return false;
  }

  render(): JSX.Element {
    if (!this.data) {
      return this.loading();
    }
    const _ = this._;
    const diff = this.data;
    const changed = diff.cells.filter(c => c.change !== 'unchanged');
    return (
      <div className="jp-sched-detail-body" data-compare={`${diff.a.id}:${diff.b.id}`}>
        {this.banner()}
        <header className="jp-sched-detail-header">
          <h1>{_('Compare runs')}</h1>
          <div className="jp-sched-compare-runs">
            <RunLink label="A" id={diff.a.id} actions={this.actions} />
            <RunLink label="B" id={diff.b.id} actions={this.actions} />
          </div>
        </header>
        <section className="jp-sched-detail-section" data-section="parameters">
          <h2>{_('Parameters that differ')}</h2>
          <ValueTable changes={diff.parameters} _={_} />
        </section>
        <section className="jp-sched-detail-section" data-section="cells">
          <h2>
            {_(
              'Cells: %1 modified, %2 added, %3 removed, %4 unchanged',
              diff.summary.modified ?? 0,
              diff.summary.added ?? 0,
              diff.summary.removed ?? 0,
              diff.summary.unchanged ?? 0
            )}
          </h2>
          {changed.length ? (
            changed.map(cell => (
              <CellDiff key={`${cell.index_a}-${cell.index_b}`} cell={cell} _={_} />
            ))
          ) : (
            <div className="jp-sched-muted">{_('The two notebooks are the same.')}</div>
          )}
        </section>
      </div>
    );
  }
}

function RunLink(props: { label: string; id: string; actions: DetailActions }): JSX.Element {
  return (
    <span className="jp-sched-compare-run">
      {props.label}:{' '}
      <a href="#" onClick={e => (e.preventDefault(), props.actions.openRun(props.id))}>
        <code>{props.id}</code>
      </a>
    </span>
  );
}

function ValueTable(props: { changes: Schemas['ValueChange'][]; _: Gettext }): JSX.Element {
  const { changes, _ } = props;
  if (!changes.length) {
    return <div className="jp-sched-muted">{_('The same parameters.')}</div>;
  }
  const shown = (present: boolean | undefined, value: unknown): string =>
    present === false ? _('(absent)') : JSON.stringify(value);
  return (
    <table className="jp-sched-table jp-sched-compare-values">
      <thead>
        <tr>
          <th>{_('name')}</th>
          <th>A</th>
          <th>B</th>
        </tr>
      </thead>
      <tbody>
        {changes.map(c => (
          <tr key={c.name} data-param={c.name}>
            <th scope="row">
              <code>{c.name}</code>
            </th>
            <td className="jp-sched-diff-old">
              <code>{shown(c.in_a, c.a)}</code>
            </td>
            <td className="jp-sched-diff-new">
              <code>{shown(c.in_b, c.b)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function position(index: number | null | undefined): string {
  return index === null || index === undefined ? '–' : String(index + 1);
}

function CellDiff(props: { cell: CellChange; _: Gettext }): JSX.Element {
  const { cell, _ } = props;
  const what =
    cell.change === 'added'
      ? _('added in B')
      : cell.change === 'removed'
        ? _('removed from A')
        : [
            cell.source_changed ? _('source changed') : '',
            cell.outputs_changed ? _('outputs changed') : ''
          ]
            .filter(Boolean)
            .join(', ');
  return (
    <div className={`jp-sched-cell-diff jp-sched-cell-${cell.change}`} data-change={cell.change}>
      <div className="jp-sched-cell-diff-title">
        {_('Cell %1 → %2', position(cell.index_a), position(cell.index_b))} · {what}
      </div>
      <div className="jp-sched-side-by-side">
        <Side source={cell.source_a} outputs={cell.outputs_a ?? []} side="a" _={_} />
        <Side source={cell.source_b} outputs={cell.outputs_b ?? []} side="b" _={_} />
      </div>
    </div>
  );
}

function Side(props: {
  source: string | null | undefined;
  outputs: OutputView[];
  side: 'a' | 'b';
  _: Gettext;
}): JSX.Element {
  const { source, outputs, side, _ } = props;
  if (source === null || source === undefined) {
    return <div className="jp-sched-side jp-sched-side-empty">{_('(no such cell)')}</div>;
  }
  return (
    <div className={`jp-sched-side jp-sched-side-${side}`} data-side={side}>
      <pre className="jp-sched-cell-source">{source}</pre>
      {outputs.map((output, i) => (
        <Output key={i} output={output} />
      ))}
    </div>
  );
}

function Output(props: { output: OutputView }): JSX.Element {
  const { output } = props;
  if (output.kind === 'image' && output.data && output.media_type) {
    // A data URL in an <img>: an SVG shown this way cannot run script.
    const data =
      output.media_type === 'image/svg+xml'
        ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(output.data)}`
        : `data:${output.media_type};base64,${output.data}`;
    return <img className="jp-sched-output-image" src={data} alt="" data-output="image" />;
  }
  return (
    <pre className={`jp-sched-output jp-sched-output-${output.kind}`} data-output={output.kind}>
      {output.text}
    </pre>
  );
}
