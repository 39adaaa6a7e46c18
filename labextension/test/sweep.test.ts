import { describe, expect, it } from 'vitest';

import type { NotebookParameter } from '../src/api';
import {
  SweepForm,
  formToMaxParallel,
  formToSweep,
  formToSweepJob,
  gridRunCount,
  sweepToForm,
  valuePieces
} from '../src/sweep';
import { defaultTriggerForm } from '../src/triggers';
import { JobForm, errorField } from '../src/validation';

const declared: NotebookParameter[] = [
  { name: 'region', type: 'str', default: 'EU', help: '' },
  { name: 'days', type: 'int', default: 7, help: '' }
];

const grid = (...rows: [string, string][]): SweepForm => ({
  rows: rows.map(([name, values]) => ({ name, values })),
  maxParallel: ''
});

describe('the grid’s run count', () => {
  it('is the product of the rows’ value counts, as typed', () => {
    expect(gridRunCount(grid())).toBe(1);
    expect(gridRunCount(grid(['region', 'EU, US, APAC']))).toBe(3);
    expect(gridRunCount(grid(['region', 'EU, US, APAC'], ['days', '1, 7, 30, 90']))).toBe(12);
    expect(gridRunCount(grid(['region', 'EU, US, APAC'], ['days', '']))).toBe(0);
  });

  it('ignores rows without a name and reads JSON lists whole', () => {
    expect(gridRunCount(grid(['', '1, 2'], ['days', '[1, 2]']))).toBe(2);
    expect(valuePieces('[[1, 2], [3]]')).toEqual(['[1,2]', '[3]']);
    expect(valuePieces(' a ,b ')).toEqual(['a', 'b']);
    expect(valuePieces('')).toEqual([]);
  });

  it('counts the sets of a list sweep the grid does not show', () => {
    expect(gridRunCount(sweepToForm([{ days: 1 }, { days: 2 }], 2))).toBe(2);
  });
});

describe('formToSweep', () => {
  it('reads each value with its parameter’s type', () => {
    const errors = {};
    const sweep = formToSweep(grid(['region', 'EU, US'], ['days', '7, 30']), declared, errors);
    expect(errors).toEqual({});
    expect(sweep).toEqual({ region: ['EU', 'US'], days: [7, 30] });
  });

  it('names the row at fault', () => {
    const errors: Record<string, string> = {};
    formToSweep(grid(['days', '7, seven'], ['nope', '1']), declared, errors);
    expect(errors['sweep.days']).toContain('seven');
    expect(errors['sweep.nope']).toContain('nope');
  });

  it('is null without rows and refuses a grid over the bound', () => {
    expect(formToSweep(grid(), declared, {})).toBeNull();
    const errors: Record<string, string> = {};
    const many = Array.from({ length: 30 }, (_, i) => String(i)).join(',');
    formToSweep(grid(['region', many], ['days', many]), declared, errors);
    expect(errors.sweep).toContain('900');
  });

  it('reads max_parallel as a whole number of at least 1', () => {
    expect(formToMaxParallel('', {})).toBeNull();
    expect(formToMaxParallel('4', {})).toBe(4);
    const errors: Record<string, string> = {};
    expect(formToMaxParallel('0', errors)).toBeUndefined();
    expect(errors.max_parallel).toBeTruthy();
  });

  it('shows a job’s grid as it was typed', () => {
    const form = sweepToForm({ region: ['EU', 'US'], days: [7, 30] }, 3);
    expect(form).toEqual({
      rows: [
        { name: 'region', values: 'EU, US' },
        { name: 'days', values: '7, 30' }
      ],
      maxParallel: '3'
    });
    expect(formToSweep(form, declared, {})).toEqual({ region: ['EU', 'US'], days: [7, 30] });
    expect(sweepToForm({ region: ['a, b', 'c'] }, null).rows[0].values).toBe('["a, b","c"]');
  });
});

describe('a sweep job’s body and the server’s errors', () => {
  const form: JobForm = {
    name: 'grid',
    notebook: 'report.ipynb',
    parameters: {},
    trigger: { ...defaultTriggerForm('UTC'), kind: 'manual' },
    kernel: '',
    retries: '0',
    retryDelay: '60',
    retryBackoff: '2',
    timeout: '',
    overlap: 'allow',
    misfire: 'run_once',
    outputFormats: ['ipynb'],
    tags: '',
    sweep: { ...grid(['region', 'EU, US'], ['days', '1, 7']), maxParallel: '2' }
  };

  it('carries the grid and max_parallel', () => {
    const checked = formToSweepJob(form, declared);
    expect(checked.ok && checked.value.sweep).toEqual({ region: ['EU', 'US'], days: [1, 7] });
    expect(checked.ok && checked.value.max_parallel).toBe(2);
  });

  it('puts a set’s field error at its parameter’s row', () => {
    expect(errorField('sweep.3.days', form, declared)).toBe('sweep.days');
    expect(errorField('sweep', form, declared)).toBe('sweep');
    expect(errorField('sweep.0.other', form, declared)).toBe('sweep');
    expect(errorField('max_parallel', form, declared)).toBe('max_parallel');
  });
});
