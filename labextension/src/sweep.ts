/**
 * The job dialog's sweep grid: rows of a parameter name and its values, expanded by the
 * server as a cartesian product (one run per combination, per fire). Pure: no DOM.
 *
 * Values are typed comma-separated ("EU, US") and read with the parameter's declared type
 * (see parseParameter); a JSON list ("[1, [2, 3]]") is read as it is, for values that hold
 * commas. The run count is the product of the rows' value counts.
 */
import type { JobCreate, NotebookParameter, Sweep } from './api';
import { Gettext, identity } from './i18n';
import type { Checked } from './triggers';
import { JobForm, formToJob, parseParameter } from './validation';

/** One row of the grid as typed. */
export interface SweepRow {
  name: string;
  values: string;
}

/** The grid as typed, and the runs of one batch at most at once ('' = no limit). */
export interface SweepForm {
  rows: SweepRow[];
  maxParallel: string;
  /** A sweep the grid cannot show (a list of parameter sets), kept as it is. */
  sets?: number;
}

/** The most parameter sets a sweep may make by default (the server's `max_sweep_sets`). */
export const DEFAULT_MAX_SWEEP_SETS = 500;

export function emptySweepForm(): SweepForm {
  return { rows: [], maxParallel: '' };
}

/** The pieces of a row's values: a JSON list as its items, else comma-separated text. */
export function valuePieces(text: string): string[] {
  const t = text.trim();
  if (!t) {
    return [];
  }
  if (t.startsWith('[')) {
    try {
      const list: unknown = JSON.parse(t);
      if (Array.isArray(list)) {
        return list.map(item => (typeof item === 'string' ? item : JSON.stringify(item)));
      }
    } catch {
      // not a JSON list: comma-separated text that starts with "["
    }
  }
  return t.split(',').map(piece => piece.trim());
}

/** The rows that name a parameter (a row left blank is ignored). */
function namedRows(form: SweepForm): SweepRow[] {
  return form.rows.filter(row => row.name.trim());
}

/**
 * How many runs each fire makes with the grid as typed: the product of the named rows'
 * value counts (1 without rows: one run, no sweep).
 */
export function gridRunCount(form: SweepForm): number {
  if (form.sets !== undefined && !namedRows(form).length) {
    return form.sets;
  }
  return namedRows(form).reduce((product, row) => product * valuePieces(row.values).length, 1);
}

/**
 * The sweep the grid describes (`null`: no row, no sweep; `undefined`: a list sweep the
 * grid leaves unchanged), with errors by `sweep.<name>` and `max_parallel` in `errors`.
 */
export function formToSweep(
  form: SweepForm,
  declared: readonly NotebookParameter[],
  errors: Record<string, string>,
  _: Gettext = identity
): Sweep | null | undefined {
  const rows = namedRows(form);
  if (!rows.length) {
    return form.sets !== undefined ? undefined : null;
  }
  const grid: Record<string, unknown[]> = {};
  for (const row of rows) {
    const name = row.name.trim();
    const field = `sweep.${name}`;
    const param = declared.find(p => p.name === name);
    if (declared.length && !param) {
      errors[field] = _('The notebook declares no parameter “%1”.', name);
      continue;
    }
    if (name in grid) {
      errors[field] = _('“%1” is in the grid twice.', name);
      continue;
    }
    const pieces = valuePieces(row.values);
    if (!pieces.length) {
      errors[field] = _('Give at least one value, such as 1, 2, 3.');
      continue;
    }
    const values: unknown[] = [];
    for (const piece of pieces) {
      const parsed = parseParameter(param?.type ?? 'str', piece, _);
      if (!parsed.ok) {
        errors[field] = _('“%1”: %2', piece, parsed.error);
        break;
      }
      values.push(parsed.value);
    }
    grid[name] = values;
  }
  const count = gridRunCount(form);
  if (count > DEFAULT_MAX_SWEEP_SETS && !errors.sweep) {
    errors.sweep = _('%1 runs per fire; at most %2.', count, DEFAULT_MAX_SWEEP_SETS);
  }
  return grid as Sweep;
}

/** The limit typed, `null` for none, `undefined` (with the error) when refused. */
export function formToMaxParallel(
  text: string,
  errors: Record<string, string>,
  _: Gettext = identity
): number | null | undefined {
  const t = text.trim();
  if (!t) {
    return null;
  }
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1) {
    errors.max_parallel = _('Expected a whole number, at least 1.');
    return undefined;
  }
  return n;
}

/** The grid of a job's sweep (a list of sets is kept, and only counted). */
export function sweepToForm(
  sweep: Sweep | null | undefined,
  maxParallel: number | null | undefined
): SweepForm {
  const limit = maxParallel ? String(maxParallel) : '';
  if (!sweep) {
    return { rows: [], maxParallel: limit };
  }
  if (Array.isArray(sweep)) {
    return { rows: [], maxParallel: limit, sets: sweep.length };
  }
  const plain = (values: unknown[]): boolean =>
    values.every(v => typeof v === 'string' && !v.includes(',') && v.trim() === v && v) ||
    values.every(v => typeof v === 'number' || typeof v === 'boolean');
  const rows = Object.entries(sweep).map(([name, values]) => ({
    name,
    values: plain(values) ? values.join(', ') : JSON.stringify(values)
  }));
  return { rows, maxParallel: limit };
}

/**
 * The body of `POST jobs` (or a full `PATCH`) the form describes, its sweep and
 * `max_parallel` included, or the errors by field (see formToJob).
 */
export function formToSweepJob(
  form: JobForm,
  declared: NotebookParameter[],
  _: Gettext = identity
): Checked<JobCreate> {
  const checked = formToJob(form, declared, _);
  if (!form.sweep) {
    return checked;
  }
  const errors: Record<string, string> = checked.ok ? {} : { ...checked.errors };
  const sweep = formToSweep(form.sweep, declared, errors, _);
  const maxParallel = formToMaxParallel(form.sweep.maxParallel, errors, _);
  if (!checked.ok || Object.keys(errors).length) {
    return { ok: false, errors };
  }
  const body: JobCreate = { ...checked.value, max_parallel: maxParallel ?? null };
  if (sweep !== undefined) {
    body.sweep = sweep;
  }
  return { ok: true, value: body };
}
