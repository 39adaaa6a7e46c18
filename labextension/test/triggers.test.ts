import { describe, expect, it } from 'vitest';

import {
  cronPresets,
  defaultTriggerForm,
  describeCron,
  describeEvery,
  describeTrigger,
  formToTrigger,
  identity,
  toLocalInput,
  triggerToForm
} from '../src/triggers';

describe('describeCron', () => {
  it.each([
    ['* * * * *', 'every minute (UTC)'],
    ['*/5 * * * *', 'every 5 minutes (UTC)'],
    ['15 * * * *', 'every hour at minute 15 (UTC)'],
    ['0 */2 * * *', 'every 2 hours at minute 0 (UTC)'],
    ['0 6 * * *', 'every day at 06:00 (UTC)'],
    ['30 7 * * 1-5', 'weekdays at 07:30 (UTC)'],
    ['0 6 * * 1', 'every Monday at 06:00 (UTC)'],
    ['0 6 * * 0', 'every Sunday at 06:00 (UTC)'],
    ['0 6 * * 7', 'every Sunday at 06:00 (UTC)'],
    ['0 6 1 * *', 'day 1 of every month at 06:00 (UTC)'],
    ['0 6 1 1 *', 'cron "0 6 1 1 *" (UTC)'],
    ['0 0 6 * * *', 'cron "0 0 6 * * *" (UTC)']
  ])('%s → %s', (cron, words) => {
    expect(describeCron(cron, 'UTC')).toBe(words);
  });

  it('names the timezone', () => {
    expect(describeCron('0 6 * * 1-5', 'Europe/Paris')).toBe('weekdays at 06:00 (Europe/Paris)');
  });

  it('translates through gettext', () => {
    const upper = (msgid: string, ...args: unknown[]) => identity(msgid.toUpperCase(), ...args);
    expect(describeCron('0 6 * * *', undefined, upper)).toBe('EVERY DAY AT 06:00');
  });
});

describe('describeEvery', () => {
  it.each([
    [1, 'every second'],
    [30, 'every 30 seconds'],
    [60, 'every minute'],
    [90, 'every 90 seconds'],
    [300, 'every 5 minutes'],
    [3600, 'every hour'],
    [7200, 'every 2 hours'],
    [86400, 'every day'],
    [2.5, 'every 2.5 seconds']
  ])('%d s → %s', (seconds, words) => {
    expect(describeEvery(seconds)).toBe(words);
  });
});

describe('describeTrigger', () => {
  it('describes every kind', () => {
    expect(describeTrigger({ kind: 'manual' })).toBe('only when run by hand');
    expect(describeTrigger({ kind: 'interval', every_seconds: 600 })).toBe('every 10 minutes');
    expect(describeTrigger({ kind: 'cron', cron: '* * * * *' })).toBe('every minute (UTC)');
    expect(
      describeTrigger({ kind: 'once', at: '2030-01-02T03:04:00Z' }, identity, 'en-GB')
    ).toMatch(/^once, at .*2030/);
  });
});

describe('cron presets', () => {
  it('are five-field expressions that describeCron puts in words', () => {
    for (const preset of cronPresets()) {
      expect(preset.cron.split(' ')).toHaveLength(5);
      expect(describeCron(preset.cron)).not.toMatch(/^cron "/);
    }
    expect(cronPresets()[0]).toEqual({ label: 'Every minute', cron: '* * * * *' });
  });
});

describe('formToTrigger', () => {
  const form = defaultTriggerForm('Europe/Paris');

  it('run now and only by hand are manual triggers', () => {
    expect(formToTrigger({ ...form, kind: 'now' })).toEqual({
      ok: true,
      value: { kind: 'manual' }
    });
    expect(formToTrigger({ ...form, kind: 'manual' })).toEqual({
      ok: true,
      value: { kind: 'manual' }
    });
  });

  it('cron keeps the expression and the timezone', () => {
    expect(formToTrigger({ ...form, kind: 'cron', cron: ' */5 * * * * ' })).toEqual({
      ok: true,
      value: { kind: 'cron', cron: '*/5 * * * *', timezone: 'Europe/Paris' }
    });
    expect(formToTrigger({ ...form, kind: 'cron', cron: ' ' })).toEqual({
      ok: false,
      errors: { 'trigger.cron': 'Enter a cron expression or pick a preset.' }
    });
  });

  it('interval converts the unit to seconds and refuses what is not a positive number', () => {
    expect(formToTrigger({ ...form, kind: 'interval', every: '5', unit: 'minutes' })).toEqual({
      ok: true,
      value: { kind: 'interval', every_seconds: 300 }
    });
    for (const every of ['', '0', '-1', 'abc']) {
      const result = formToTrigger({ ...form, kind: 'interval', every, unit: 'hours' });
      expect(result.ok).toBe(false);
      expect(result.ok ? null : Object.keys(result.errors)).toEqual(['trigger.every_seconds']);
    }
    expect(formToTrigger({ ...form, kind: 'interval', every: '0.5', unit: 'seconds' }).ok).toBe(
      false
    );
  });

  it('once reads the local time of the browser and sends UTC', () => {
    const local = new Date(2031, 5, 7, 8, 9);
    const result = formToTrigger({ ...form, kind: 'once', at: toLocalInput(local) });
    expect(result).toEqual({ ok: true, value: { kind: 'once', at: local.toISOString() } });
    expect(formToTrigger({ ...form, kind: 'once', at: '' }).ok).toBe(false);
  });
});

describe('formToTrigger for events and dependencies', () => {
  const form = defaultTriggerForm('UTC');
  it('needs an event name and at least one upstream job', () => {
    expect(formToTrigger({ ...form, kind: 'event', event: ' ' })).toEqual({
      ok: false,
      errors: { 'trigger.event': 'Name the event, such as sales.loaded.' }
    });
    expect(formToTrigger({ ...form, kind: 'after' })).toEqual({
      ok: false,
      errors: { 'trigger.jobs': 'Pick at least one job to wait for.' }
    });
    expect(formToTrigger({ ...form, kind: 'after', afterJobs: ['x'] })).toEqual({
      ok: true,
      value: { kind: 'after', jobs: ['x'], condition: 'success', pass_results: false }
    });
  });
});

describe('triggerToForm', () => {
  it('round-trips every kind', () => {
    const triggers = [
      { kind: 'cron' as const, cron: '0 6 * * 1-5', timezone: 'Asia/Tokyo' },
      { kind: 'interval' as const, every_seconds: 7200 },
      { kind: 'interval' as const, every_seconds: 45 },
      { kind: 'once' as const, at: new Date(2031, 0, 2, 3, 4).toISOString() },
      { kind: 'manual' as const },
      { kind: 'event' as const, event: 'sales.loaded' },
      {
        kind: 'after' as const,
        jobs: ['a', 'b'],
        condition: 'failure' as const,
        pass_results: true
      }
    ];
    for (const trigger of triggers) {
      expect(formToTrigger(triggerToForm(trigger, 'UTC'))).toEqual({ ok: true, value: trigger });
    }
    expect(triggerToForm({ kind: 'interval', every_seconds: 7200 }, 'UTC')).toMatchObject({
      every: '2',
      unit: 'hours'
    });
  });
});
