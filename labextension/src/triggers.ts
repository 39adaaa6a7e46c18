/**
 * The trigger editor's state, how it becomes a trigger (or errors by field) and back, and
 * its cron presets. Pure: no DOM, no JupyterLab; `_` is the translator's gettext (identity
 * in tests). Triggers in words come from the server (`trigger_description` of a job, the
 * `preview` endpoint while typing), so the panel and the server never word them apart.
 */
import type { Trigger } from './api';
import { Gettext, identity } from './i18n';

/** A cron preset of the trigger editor. */
export interface CronPreset {
  label: string;
  cron: string;
}

export function cronPresets(_: Gettext = identity): CronPreset[] {
  return [
    { label: _('Every minute'), cron: '* * * * *' },
    { label: _('Every 5 minutes'), cron: '*/5 * * * *' },
    { label: _('Every hour'), cron: '0 * * * *' },
    { label: _('Every day at 06:00'), cron: '0 6 * * *' },
    { label: _('Weekdays at 06:00'), cron: '0 6 * * 1-5' },
    { label: _('Mondays at 06:00'), cron: '0 6 * * 1' },
    { label: _('First day of the month at 06:00'), cron: '0 6 1 * *' }
  ];
}

/** What the trigger editor holds, as typed (strings, so nothing typed is lost). */
export interface TriggerForm {
  /** `now` = a manual job run once as soon as it is created. */
  kind: 'now' | 'manual' | 'once' | 'interval' | 'cron' | 'event' | 'after';
  cron: string;
  every: string;
  unit: 'seconds' | 'minutes' | 'hours' | 'days';
  /** A `datetime-local` value (local wall time of `timezone`'s browser: see toTrigger). */
  at: string;
  timezone: string;
  /** Name of the event of an `event` trigger. */
  event: string;
  /** Upstream job ids of an `after` trigger. */
  afterJobs: string[];
  condition: 'success' | 'failure' | 'completion';
  passResults: boolean;
}

/** The shortest interval the server takes, in seconds. */
export const MIN_EVERY_SECONDS = 1;

export const UNIT_SECONDS: Record<TriggerForm['unit'], number> = {
  seconds: 1,
  minutes: 60,
  hours: 3600,
  days: 86400
};

export function defaultTriggerForm(timezone: string): TriggerForm {
  return {
    kind: 'now',
    cron: '0 6 * * *',
    every: '1',
    unit: 'hours',
    at: '',
    timezone,
    event: '',
    afterJobs: [],
    condition: 'success',
    passResults: false
  };
}

/** The editor's state of an existing trigger. */
export function triggerToForm(trigger: Trigger, timezone: string): TriggerForm {
  const form = defaultTriggerForm(timezone);
  switch (trigger.kind) {
    case 'cron':
      return { ...form, kind: 'cron', cron: trigger.cron, timezone: trigger.timezone ?? 'UTC' };
    case 'interval': {
      const s = trigger.every_seconds;
      const unit = (['days', 'hours', 'minutes'] as const).find(
        u => s >= UNIT_SECONDS[u] && s % UNIT_SECONDS[u] === 0
      );
      return unit
        ? { ...form, kind: 'interval', every: String(s / UNIT_SECONDS[unit]), unit }
        : { ...form, kind: 'interval', every: String(s), unit: 'seconds' };
    }
    case 'once':
      return { ...form, kind: 'once', at: toLocalInput(new Date(trigger.at)) };
    case 'event':
      return { ...form, kind: 'event', event: trigger.event };
    case 'after':
      return {
        ...form,
        kind: 'after',
        afterJobs: [...trigger.jobs],
        condition: trigger.condition ?? 'success',
        passResults: trigger.pass_results ?? false
      };
    default:
      return { ...form, kind: 'manual' };
  }
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** A Date as the value of an `<input type="datetime-local">` in the browser's time. */
export function toLocalInput(date: Date): string {
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** The result of reading a form: a value, or an error per field. */
export type Checked<T> = { ok: true; value: T } | { ok: false; errors: Record<string, string> };

/** A refusal of the form, with `message` at `field`. */
const refuse = (field: string, message: string): Checked<never> => ({
  ok: false,
  errors: { [field]: message }
});

/**
 * The trigger the editor describes, or what is wrong with it, by field (`trigger.cron`,
 * `trigger.every_seconds`, `trigger.at`). Cron syntax is left to the server, which
 * answers the preview with its own message.
 */
export function formToTrigger(form: TriggerForm, _: Gettext = identity): Checked<Trigger> {
  switch (form.kind) {
    case 'now':
    case 'manual':
      return { ok: true, value: { kind: 'manual' } };
    case 'cron': {
      const cron = form.cron.trim();
      if (!cron) {
        return refuse('trigger.cron', _('Enter a cron expression or pick a preset.'));
      }
      const value: Trigger = { kind: 'cron', cron };
      if (form.timezone.trim()) {
        value.timezone = form.timezone.trim();
      }
      return { ok: true, value };
    }
    case 'interval':
      return formToInterval(form, _);
    case 'once': {
      const date = new Date(form.at);
      if (!form.at || Number.isNaN(date.getTime())) {
        return refuse('trigger.at', _('Pick a date and time.'));
      }
      return { ok: true, value: { kind: 'once', at: date.toISOString() } };
    }
    case 'event': {
      const event = form.event.trim();
      if (!event) {
        return refuse('trigger.event', _('Name the event, such as sales.loaded.'));
      }
      return { ok: true, value: { kind: 'event', event } };
    }
    case 'after': {
      if (!form.afterJobs.length) {
        return refuse('trigger.jobs', _('Pick at least one job to wait for.'));
      }
      const { afterJobs, condition, passResults } = form;
      return {
        ok: true,
        value: { kind: 'after', jobs: [...afterJobs], condition, pass_results: passResults }
      };
    }
  }
}

/** The interval the editor describes, in seconds, at least the server's shortest. */
function formToInterval(form: TriggerForm, _: Gettext): Checked<Trigger> {
  const n = Number(form.every.trim());
  if (!form.every.trim() || !Number.isFinite(n) || n <= 0) {
    return refuse('trigger.every_seconds', _('Enter a positive number.'));
  }
  const seconds = n * UNIT_SECONDS[form.unit];
  if (seconds < MIN_EVERY_SECONDS) {
    return refuse(
      'trigger.every_seconds',
      _('The interval must be at least %1 second.', MIN_EVERY_SECONDS)
    );
  }
  return { ok: true, value: { kind: 'interval', every_seconds: seconds } };
}
