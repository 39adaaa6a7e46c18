import { describe, expect, it } from 'vitest';

import type { NotebookParameter } from '../src/api';
import { defaultTriggerForm } from '../src/triggers';
import {
  JobForm,
  errorField,
  formToJob,
  parameterInput,
  parameterText,
  parseParameter,
  parseTags
} from '../src/validation';

describe('parameter inputs', () => {
  it('pick an input by type', () => {
    expect(parameterInput('int')).toBe('integer');
    expect(parameterInput('float')).toBe('number');
    expect(parameterInput('bool')).toBe('boolean');
    expect(parameterInput('str')).toBe('text');
    expect(parameterInput('list')).toBe('json');
    expect(parameterInput('dict')).toBe('json');
    expect(parameterInput('any')).toBe('json');
  });

  it('show defaults as text', () => {
    expect(parameterText('str', 'EU')).toBe('EU');
    expect(parameterText('int', 7)).toBe('7');
    expect(parameterText('bool', false)).toBe('false');
    expect(parameterText('list', ['a', 'b'])).toBe('["a","b"]');
    const long = { widgets: 1200, gadgets: 800, gizmos: 400, sprockets: 300, doohickeys: 1 };
    expect(parameterText('dict', long)).toBe(JSON.stringify(long, null, 2));
  });
});

describe('parseParameter', () => {
  it.each([
    ['int', '14', 14],
    ['int', ' -3 ', -3],
    ['float', '1.5', 1.5],
    ['float', '2', 2],
    ['bool', 'true', true],
    ['bool', 'false', false],
    ['str', ' keep spaces ', ' keep spaces '],
    ['list', '["a", 1]', ['a', 1]],
    ['dict', '{"a": 1}', { a: 1 }],
    ['any', 'null', null]
  ])('%s %j → %j', (type, text, value) => {
    expect(parseParameter(type, text)).toEqual({ ok: true, value });
  });

  it.each([
    ['int', 'seven', 'Expected a whole number, such as 7.'],
    ['int', '1.5', 'Expected a whole number, such as 7.'],
    ['int', '99999999999999999999', 'This whole number is too large.'],
    ['float', '', 'Expected a number, such as 0.5.'],
    ['float', 'NaN', 'Expected a number, such as 0.5.'],
    ['bool', 'yes', 'Expected true or false.'],
    ['list', '{"a": 1}', 'Expected a JSON list, such as ["a", "b"].'],
    ['dict', '[1]', 'Expected a JSON object, such as {"key": 1}.'],
    ['dict', 'null', 'Expected a JSON object, such as {"key": 1}.']
  ])('%s %j is refused', (type, text, error) => {
    expect(parseParameter(type, text)).toEqual({ ok: false, error });
  });

  it('reports broken JSON', () => {
    const result = parseParameter('list', '["a",');
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.error).toMatch(/^Not valid JSON: /);
  });
});

const declared: NotebookParameter[] = [
  { name: 'region', type: 'str', default: 'EU', help: '' },
  { name: 'days', type: 'int', default: 7, help: '' },
  { name: 'products', type: 'list', default: ['a'], help: '' }
];

function form(changes: Partial<JobForm> = {}): JobForm {
  return {
    name: 'sales',
    notebook: 'reports/sales.ipynb',
    parameters: { region: 'EU', days: '7', products: '["a"]' },
    trigger: { ...defaultTriggerForm('UTC'), kind: 'cron', cron: '* * * * *' },
    kernel: '',
    retries: '2',
    retryDelay: '30',
    retryBackoff: '2',
    timeout: '',
    overlap: 'skip',
    misfire: 'run_once',
    outputFormats: ['ipynb', 'html'],
    tags: 'finance, daily finance',
    ...changes
  };
}

describe('formToJob', () => {
  it('builds the body of POST jobs, sending only parameters that differ from the defaults', () => {
    const result = formToJob(
      form({ parameters: { region: 'US', days: '7', products: '["a","b"]' } }),
      declared
    );
    expect(result).toEqual({
      ok: true,
      value: {
        name: 'sales',
        notebook: 'reports/sales.ipynb',
        parameters: { region: 'US', products: ['a', 'b'] },
        trigger: { kind: 'cron', cron: '* * * * *', timezone: 'UTC' },
        kernel: null,
        retries: 2,
        retry_delay_seconds: 30,
        retry_backoff: 2,
        timeout_seconds: null,
        overlap: 'skip',
        misfire: 'run_once',
        output_formats: ['ipynb', 'html'],
        tags: ['finance', 'daily']
      }
    });
  });

  it('collects every error by field before anything is sent', () => {
    const result = formToJob(
      form({
        name: ' ',
        notebook: 'notes.txt',
        parameters: { region: 'EU', days: 'many', products: '{}' },
        trigger: { ...defaultTriggerForm('UTC'), kind: 'interval', every: '0' },
        retries: '-1',
        timeout: 'soon',
        tags: 'ok bad!tag'
      }),
      declared
    );
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : Object.keys(result.errors).sort()).toEqual([
      'name',
      'notebook',
      'parameters.days',
      'parameters.products',
      'retries',
      'tags',
      'timeout_seconds',
      'trigger.every_seconds'
    ]);
  });

  it('keeps ipynb first and once in the output formats', () => {
    const result = formToJob(form({ outputFormats: ['html'] }), declared);
    expect(result.ok && result.value.output_formats).toEqual(['ipynb', 'html']);
  });
});

describe('parseTags', () => {
  it('splits on commas and spaces, without duplicates', () => {
    expect(parseTags(' a, b  c,,a ')).toEqual(['a', 'b', 'c']);
    expect(parseTags('')).toEqual([]);
  });
});

describe('errorField', () => {
  const cron = form();
  const manual = form({ trigger: { ...defaultTriggerForm('UTC'), kind: 'manual' } });

  it.each([
    ['name', 'name', cron],
    ['trigger', 'trigger.cron', cron],
    ['trigger', 'trigger', manual],
    ['trigger.timezone', 'trigger.timezone', cron],
    ['parameters.days', 'parameters.days', cron],
    ['parameters.nope', '', cron],
    ['retry_backoff', 'retries', cron],
    ['retention_days', 'retention_days', cron],
    ['notifications.1.to.0', 'notifications.1.to', cron],
    ['notifications', 'notifications', cron],
    ['queue', '', cron],
    ['version', '', cron],
    [null, '', cron]
  ])('the server’s %j shows at %j', (field, expected, shown) => {
    expect(errorField(field, shown as JobForm, declared)).toBe(expected);
  });
});
