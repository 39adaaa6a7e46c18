import { describe, expect, it } from 'vitest';

import type { NotificationTarget } from '../src/api';
import { defaultTriggerForm } from '../src/triggers';
import {
  JobForm,
  formToJob,
  formToNotifications,
  newNotificationForm,
  notificationsToForm
} from '../src/validation';

describe('notification targets', () => {
  it('round-trip between the job fields and the form', () => {
    const targets: NotificationTarget[] = [
      {
        kind: 'webhook',
        url: 'https://hooks.example.org/x',
        format: 'slack',
        on: ['failure', 'slow'],
        slower_than_seconds: 600
      },
      { kind: 'email', to: ['ops@example.org', 'me@example.org'], on: ['success'] }
    ];
    const forms = notificationsToForm(targets);
    expect(forms[0]).toMatchObject({ kind: 'webhook', format: 'slack', slowerThan: '600' });
    expect(forms[1]).toMatchObject({ kind: 'email', to: 'ops@example.org, me@example.org' });
    const errors = {};
    expect(formToNotifications(forms, errors)).toEqual([
      targets[0],
      { ...targets[1], slower_than_seconds: null }
    ]);
    expect(errors).toEqual({});
    expect(notificationsToForm(null)).toEqual([]);
  });

  it('name their errors as the server does', () => {
    const errors: Record<string, string> = {};
    formToNotifications(
      [
        { ...newNotificationForm('webhook'), url: 'ftp://x' },
        { ...newNotificationForm('email'), to: 'ops@example.org, nobody' },
        { ...newNotificationForm('email'), on: [] },
        { ...newNotificationForm('webhook'), url: 'http://h/x', on: ['slow'] }
      ],
      errors
    );
    expect(Object.keys(errors).sort()).toEqual([
      'notifications.0.url',
      'notifications.1.to',
      'notifications.2.on',
      'notifications.2.to',
      'notifications.3.slower_than_seconds'
    ]);
    expect(errors['notifications.1.to']).toMatch(/nobody/);
  });
});

describe('formToJob with retention and notifications', () => {
  const form: JobForm = {
    name: 'n',
    notebook: 'a.ipynb',
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
    tags: ''
  };

  it('leaves the fields out when the form has none', () => {
    const checked = formToJob(form, []);
    expect(checked.ok && 'notifications' in checked.value).toBe(false);
    expect(checked.ok && 'retention_days' in checked.value).toBe(false);
  });

  it('sends them, empty as null', () => {
    const checked = formToJob(
      { ...form, notifications: [], retentionDays: '30', retentionRuns: '' },
      []
    );
    expect(checked.ok).toBe(true);
    if (checked.ok) {
      expect(checked.value.notifications).toEqual([]);
      expect(checked.value.retention_days).toBe(30);
      expect(checked.value.retention_runs).toBeNull();
    }
  });

  it('refuses a bad retention', () => {
    const checked = formToJob({ ...form, retentionRuns: '0', retentionDays: 'x' }, []);
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(Object.keys(checked.errors).sort()).toEqual(['retention_days', 'retention_runs']);
    }
  });
});
