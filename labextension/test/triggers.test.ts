import { describe, expect, it } from 'vitest';

import {
  cronPresets,
  defaultTriggerForm,
  formToTrigger,
  toLocalInput,
  triggerToForm
} from '../src/triggers';

describe('cron presets', () => {
  it('are distinct five-field expressions', () => {
    const presets = cronPresets();
    for (const preset of presets) {
      expect(preset.cron.split(' ')).toHaveLength(5);
    }
    expect(new Set(presets.map(p => p.cron)).size).toBe(presets.length);
    expect(presets[0]).toEqual({ label: 'Every minute', cron: '* * * * *' });
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
