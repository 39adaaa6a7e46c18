/**
 * The form's rules are the server's: each is compared with the server's openapi.json (the
 * generated document of jupyter_sched/schemas.py), and the patterns JavaScript spells
 * differently are tried on strings the server was seen to take or refuse.
 */
import { describe, expect, it } from 'vitest';

import openapi from '../openapi.json';
import { MIN_EVERY_SECONDS, defaultTriggerForm } from '../src/triggers';
import {
  EMAIL_PATTERN,
  JobForm,
  NAME_MAX_LENGTH,
  NUMBER_RULES,
  TAG_MAX_LENGTH,
  TAG_PATTERN,
  WEBHOOK_URL_PATTERN,
  formToJob,
  formToNotifications,
  newNotificationForm
} from '../src/validation';

type Schema = {
  type?: string;
  anyOf?: Schema[];
  minimum?: number;
  exclusiveMinimum?: number;
  maxLength?: number;
  pattern?: string;
  items?: Schema;
};
const schemas = openapi.components.schemas as unknown as Record<
  string,
  { properties: Record<string, Schema> }
>;

/** The non-null alternative of a schema (`anyOf: [X, null]` for optional fields). */
const value = (schema: Schema): Schema => schema.anyOf?.find(s => s.type !== 'null') ?? schema;

describe('the form’s number rules', () => {
  it.each(Object.entries(NUMBER_RULES))('%s: the server’s type and lower bound', (field, rule) => {
    const owners =
      field === 'slower_than_seconds' ? ['WebhookTarget', 'EmailTarget'] : ['JobCreate'];
    for (const owner of owners) {
      const schema = value(schemas[owner].properties[field]);
      expect(schema.type).toBe('integer' in rule && rule.integer ? 'integer' : 'number');
      expect(schema.minimum).toBe('minimum' in rule ? rule.minimum : undefined);
      expect(schema.exclusiveMinimum).toBe(
        'exclusiveMinimum' in rule ? rule.exclusiveMinimum : undefined
      );
    }
  });

  it('the shortest interval is the server’s', () => {
    expect(schemas.IntervalTrigger.properties.every_seconds.minimum).toBe(MIN_EVERY_SECONDS);
  });
});

describe('the form’s text rules', () => {
  it('lengths are the server’s', () => {
    expect(schemas.JobCreate.properties.name.maxLength).toBe(NAME_MAX_LENGTH);
    expect(schemas.JobCreate.properties.tags.items?.maxLength).toBe(TAG_MAX_LENGTH);
  });

  it('email and webhook patterns are the server’s', () => {
    const to = schemas.EmailTarget.properties.to.items?.pattern as string;
    const url = schemas.WebhookTarget.properties.url.pattern as string;
    expect(EMAIL_PATTERN.source).toBe(new RegExp(to).source);
    expect(WEBHOOK_URL_PATTERN.source).toBe(new RegExp(url).source);
  });

  it('the tag pattern is the server’s, with Unicode word characters', () => {
    // Written for this pattern: a change on the server must be mirrored here.
    expect(schemas.JobCreate.properties.tags.items?.pattern).toBe('^[\\w .:/-]+$');
    // What pydantic 2.14 (Rust regex) took and refused.
    const taken = [
      'café',
      'ß',
      'Ⅻ',
      'a\u0301',
      'x_y',
      '日本',
      '٣',
      'a\u200db',
      '𝒳',
      'ǅ',
      'a.b:c/d-e f'
    ];
    const refused = ['²', '½', 'a·b', 'bad!tag', 'a,b', ''];
    expect(taken.filter(t => !TAG_PATTERN.test(t))).toEqual([]);
    expect(refused.filter(t => TAG_PATTERN.test(t))).toEqual([]);
  });
});

describe('formToJob takes what the server takes', () => {
  const form: JobForm = {
    name: 'n',
    notebook: 'a.ipynb',
    parameters: {},
    trigger: { ...defaultTriggerForm('UTC'), kind: 'manual' },
    kernel: '',
    retries: '0',
    retryDelay: '0',
    retryBackoff: '1',
    timeout: '',
    overlap: 'allow',
    misfire: 'run_once',
    outputFormats: ['ipynb'],
    tags: ''
  };

  it('fractions of a second and of a day, and the lowest values', () => {
    const checked = formToJob({ ...form, timeout: '0.5', retentionDays: '0.5' }, []);
    expect(checked.ok).toBe(true);
    if (checked.ok) {
      expect(checked.value.timeout_seconds).toBe(0.5);
      expect(checked.value.retention_days).toBe(0.5);
      expect(checked.value.retry_delay_seconds).toBe(0);
      expect(checked.value.retry_backoff).toBe(1);
    }
  });

  it('refuses zero where the server wants more than zero', () => {
    const checked = formToJob({ ...form, timeout: '0', retentionDays: '0' }, []);
    expect(checked.ok ? [] : Object.keys(checked.errors).sort()).toEqual([
      'retention_days',
      'timeout_seconds'
    ]);
  });

  it('counts a name’s characters as the server does', () => {
    const astral = '𝒳';
    expect(formToJob({ ...form, name: astral.repeat(NAME_MAX_LENGTH) }, []).ok).toBe(true);
    expect(formToJob({ ...form, name: astral.repeat(NAME_MAX_LENGTH + 1) }, []).ok).toBe(false);
    expect(formToJob({ ...form, tags: `café ${astral.repeat(TAG_MAX_LENGTH)}` }, []).ok).toBe(true);
    expect(formToJob({ ...form, tags: astral.repeat(TAG_MAX_LENGTH + 1) }, []).ok).toBe(false);
  });

  it('notification targets: addresses without a dot in the domain, thresholds under a second', () => {
    const errors: Record<string, string> = {};
    const targets = formToNotifications(
      [
        { ...newNotificationForm('email'), to: 'ops@localhost' },
        { ...newNotificationForm('webhook'), url: 'http://hooks', on: ['slow'], slowerThan: '0.5' }
      ],
      errors
    );
    expect(errors).toEqual({});
    expect(targets).toEqual([
      { kind: 'email', to: ['ops@localhost'], on: ['failure'], slower_than_seconds: null },
      {
        kind: 'webhook',
        url: 'http://hooks',
        format: 'json',
        on: ['slow'],
        slower_than_seconds: 0.5
      }
    ]);
  });
});
