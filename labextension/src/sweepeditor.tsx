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
  const count = gridRunCount(sweep);
  const setRow = (index: number, row: SweepRow): void => {
    const rows = sweep.rows.map((r, i) => (i === index ? row : r));
    const stale = [`sweep.${sweep.rows[index].name.trim()}`, `sweep.${row.name.trim()}`];
    onChange({ ...sweep, rows }, ['sweep', ...stale]);
  };
  // the scheduler's own parameters (the run's date) are not swept
  const unused = declared.find(
    p => !RESERVED.includes(p.name) && !sweep.rows.some(r => r.name.trim() === p.name)
  );
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
          remove={() =>
            onChange({ ...sweep, rows: sweep.rows.filter((_r, i) => i !== index) }, [
              'sweep',
              `sweep.${row.name.trim()}`
            ])
          }
          _={_}
        />
      ))}
      <div className="jp-sched-sweep-footer">
        <button
          type="button"
          className="jp-sched-button jp-mod-styled"
          data-action="add-sweep-row"
          onClick={() =>
            onChange(
              { ...sweep, rows: [...sweep.rows, { name: unused?.name ?? '', values: '' }] },
              ['sweep']
            )
          }
        >
          {_('Add a parameter to sweep')}
        </button>
        <span className="jp-sched-sweep-count" data-run-count={count} aria-live="polite">
          {count === 1 ? _('1 run per fire') : _('%1 runs per fire', count)}
        </span>
      </div>
      {errors.sweep && (
        <div className="jp-sched-error" role="alert" data-error-for="sweep">
          {errors.sweep}
        </div>
      )}
      {sweep.rows.length || sweep.sets !== undefined ? (
        <Field
          label={_('At most at once')}
          field="max_parallel"
          error={errors.max_parallel}
          hint={_('Runs of one fire (or backfill) running side by side; empty: no limit.')}
        >
          <input
            className="jp-mod-styled"
            name="max_parallel"
            inputMode="numeric"
            value={sweep.maxParallel}
            onChange={e => onChange({ ...sweep, maxParallel: e.target.value }, ['max_parallel'])}
          />
        </Field>
      ) : null}
    </fieldset>
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
        {declared.length ? (
          <select
            className="jp-mod-styled"
            name={`sweep-name-${index}`}
            aria-label={_('Parameter')}
            value={row.name}
            onChange={e => set({ ...row, name: e.target.value })}
          >
            {!declared.some(p => p.name === row.name) && (
              <option value={row.name}>{row.name}</option>
            )}
            {declared.map(p => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        ) : (
          <input
            className="jp-mod-styled"
            name={`sweep-name-${index}`}
            aria-label={_('Parameter')}
            placeholder={_('parameter')}
            value={row.name}
            onChange={e => set({ ...row, name: e.target.value })}
          />
        )}
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
