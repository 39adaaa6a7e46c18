/**
 * The dialog's parameter sweep: a grid of parameters and their values, the number of runs
 * each fire makes shown as it is typed, and how many of them run at once.
 */
import * as React from 'react';

import type { NotebookParameter } from './api';
import { Field } from './components';
import type { Gettext } from './i18n';
import { SweepForm, SweepRow, gridRunCount, valuePieces } from './sweep';

/** Parameters the scheduler fills in itself. */
const RESERVED = ['scheduled_for', 'event_payload'];

export function SweepEditor(props: {
  sweep: SweepForm;
  declared: NotebookParameter[];
  errors: Record<string, string>;
  /** Change the grid; `touched` are the fields whose errors the change makes stale. */
  onChange: (sweep: SweepForm, touched: string[]) => void;
  _: Gettext;
}): JSX.Element {
  const { sweep, declared, errors, onChange, _ } = props;
  const setRow = (index: number, row: SweepRow): void => {
    const rows = sweep.rows.map((r, i) => (i === index ? row : r));
    const stale = [`sweep.${sweep.rows[index].name.trim()}`, `sweep.${row.name.trim()}`];
    onChange({ ...sweep, rows }, ['sweep', ...stale]);
  };
  const removeRow = (index: number): void =>
    onChange({ ...sweep, rows: sweep.rows.filter((_r, i) => i !== index) }, [
      'sweep',
      `sweep.${sweep.rows[index].name.trim()}`
    ]);
  const addRow = (): void => {
    // the scheduler's own parameters (the run's date) are not swept
    const unused = declared.find(
      p => !RESERVED.includes(p.name) && !sweep.rows.some(r => r.name.trim() === p.name)
    );
    onChange({ ...sweep, rows: [...sweep.rows, { name: unused?.name ?? '', values: '' }] }, [
      'sweep'
    ]);
  };
  return (
    <fieldset className="jp-sched-fieldset jp-sched-sweep" data-section="sweep">
      <legend>{_('Parameter sweep')}</legend>
      {sweep.sets !== undefined && !sweep.rows.length ? (
        <div className="jp-sched-muted">
          {_('This job runs %1 parameter sets each fire (a list set through the API).', sweep.sets)}
        </div>
      ) : null}
      {sweep.rows.map((row, index) => (
        <GridRow
          key={index}
          index={index}
          row={row}
          declared={declared}
          error={errors[`sweep.${row.name.trim()}`]}
          set={next => setRow(index, next)}
          remove={() => removeRow(index)}
          _={_}
        />
      ))}
      <SweepFooter count={gridRunCount(sweep)} addRow={addRow} _={_} />
      {errors.sweep && (
        <div className="jp-sched-error" role="alert" data-error-for="sweep">
          {errors.sweep}
        </div>
      )}
      {sweep.rows.length || sweep.sets !== undefined ? (
        <MaxParallelField
          value={sweep.maxParallel}
          error={errors.max_parallel}
          set={maxParallel => onChange({ ...sweep, maxParallel }, ['max_parallel'])}
          _={_}
        />
      ) : null}
    </fieldset>
  );
}

/** Add a row to the grid; how many runs each fire makes, updated as the grid is typed. */
function SweepFooter(props: { count: number; addRow: () => void; _: Gettext }): JSX.Element {
  const { count, addRow, _ } = props;
  return (
    <div className="jp-sched-sweep-footer">
      <button
        type="button"
        className="jp-sched-button jp-mod-styled"
        data-action="add-sweep-row"
        onClick={addRow}
      >
        {_('Add a parameter to sweep')}
      </button>
      <span className="jp-sched-sweep-count" data-run-count={count} aria-live="polite">
        {count === 1 ? _('1 run per fire') : _('%1 runs per fire', count)}
      </span>
    </div>
  );
}

/** How many runs of one fire (or backfill) run side by side. */
function MaxParallelField(props: {
  value: string;
  error?: string;
  set: (value: string) => void;
  _: Gettext;
}): JSX.Element {
  const { value, error, set, _ } = props;
  return (
    <Field
      label={_('At most at once')}
      field="max_parallel"
      error={error}
      hint={_('Runs of one fire (or backfill) running side by side; empty: no limit.')}
    >
      <input
        className="jp-mod-styled"
        name="max_parallel"
        inputMode="numeric"
        value={value}
        onChange={e => set(e.target.value)}
      />
    </Field>
  );
}

/** One parameter of the grid and its values, with how many there are. */
function GridRow(props: {
  index: number;
  row: SweepRow;
  declared: NotebookParameter[];
  error?: string;
  set: (row: SweepRow) => void;
  remove: () => void;
  _: Gettext;
}): JSX.Element {
  const { index, row, declared, error, set, remove, _ } = props;
  const count = valuePieces(row.values).length;
  const type = declared.find(p => p.name === row.name.trim())?.type;
  return (
    <div
      className={`jp-sched-sweep-row${error ? ' jp-sched-mod-error' : ''}`}
      data-field={`sweep.${row.name.trim()}`}
      data-row={index}
    >
      <div className="jp-sched-sweep-inputs">
        <ParameterName
          index={index}
          name={row.name}
          declared={declared}
          set={name => set({ ...row, name })}
          _={_}
        />
        <input
          className="jp-mod-styled"
          name={`sweep-values-${index}`}
          aria-label={_('Values of %1', row.name || _('the parameter'))}
          placeholder={type === 'str' ? 'EU, US, APAC' : '7, 30, 90'}
          value={row.values}
          onChange={e => set({ ...row, values: e.target.value })}
        />
        <span className="jp-sched-muted jp-sched-sweep-row-count">
          {count === 1 ? _('1 value') : _('%1 values', count)}
        </span>
        <button
          type="button"
          className="jp-sched-button jp-mod-styled"
          aria-label={_('Remove %1 from the sweep', row.name)}
          onClick={remove}
        >
          ×
        </button>
      </div>
      {error && (
        <div className="jp-sched-error" role="alert" data-error-for={`sweep.${row.name.trim()}`}>
          {error}
        </div>
      )}
    </div>
  );
}

/** A grid row's parameter: one of those the notebook declares, else any name typed. */
function ParameterName(props: {
  index: number;
  name: string;
  declared: NotebookParameter[];
  set: (name: string) => void;
  _: Gettext;
}): JSX.Element {
  const { index, name, declared, set, _ } = props;
  if (!declared.length) {
    return (
      <input
        className="jp-mod-styled"
        name={`sweep-name-${index}`}
        aria-label={_('Parameter')}
        placeholder={_('parameter')}
        value={name}
        onChange={e => set(e.target.value)}
      />
    );
  }
  return (
    <select
      className="jp-mod-styled"
      name={`sweep-name-${index}`}
      aria-label={_('Parameter')}
      value={name}
      onChange={e => set(e.target.value)}
    >
      {!declared.some(p => p.name === name) && <option value={name}>{name}</option>}
      {declared.map(p => (
        <option key={p.name} value={p.name}>
          {p.name}
        </option>
      ))}
    </select>
  );
}
