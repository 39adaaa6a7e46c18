/**
 * Triggers in plain words, cron presets and the trigger editor's state. Pure: no DOM, no
 * JupyterLab; `_` is the translator's gettext (identity in tests).
 */
import type { Trigger } from './api';

export type Gettext = (msgid: string, ...args: unknown[]) => string;

/** gettext without a translation: `%1`, `%2`... replaced by the arguments. */
export const identity: Gettext = (msgid, ...args) =>
  args.reduce<string>((text, arg, i) => text.split(`%${i + 1}`).join(String(arg)), msgid);

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

const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

const UNITS: [number, string, string][] = [
  [86400, 'day', 'days'],
  [3600, 'hour', 'hours'],
  [60, 'minute', 'minutes'],
  [1, 'second', 'seconds']
];

/** "every 5 minutes", "every hour", "every 90 seconds". */
export function describeEvery(seconds: number, _: Gettext = identity): string {
  for (const [size, one, many] of UNITS) {
    if (seconds >= size && seconds % size === 0) {
      const n = seconds / size;
      return n === 1 ? _('every %1', _(one)) : _('every %1 %2', n, _(many));
    }
  }
  return _('every %1 %2', seconds, _('seconds'));
}

const pad = (n: number): string => String(n).padStart(2, '0');
const isNumber = (field: string): boolean => /^\d+$/.test(field);

/**
 * A cron expression in words for the common shapes ("every minute", "every day at 06:00
 * (Europe/Paris)", "weekdays at 06:00"); other expressions are shown as they are. The
 * server's preview gives the authoritative description in the editor.
 */
export function describeCron(cron: string, timezone?: string, _: Gettext = identity): string {
  const fields = cron.trim().split(/\s+/);
  const tz = timezone && timezone !== 'UTC' ? ` (${timezone})` : timezone ? ' (UTC)' : '';
  if (fields.length !== 5) {
    return _('cron "%1"', cron.trim()) + tz;
  }
  const [minute, hour, dom, month, dow] = fields;
  const step = (field: string): number | null => {
    const m = /^\*\/(\d+)$/.exec(field);
    return m ? Number(m[1]) : null;
  };
  const anyDay = dom === '*' && month === '*';
  if (anyDay && dow === '*' && hour === '*') {
    if (minute === '*') {
      return _('every minute') + tz;
    }
    const every = step(minute);
    if (every) {
      return _('every %1 minutes', every) + tz;
    }
    if (isNumber(minute)) {
      return _('every hour at minute %1', Number(minute)) + tz;
    }
  }
  if (anyDay && dow === '*' && isNumber(minute) && step(hour)) {
    return _('every %1 hours at minute %2', step(hour), Number(minute)) + tz;
  }
  if (isNumber(minute) && isNumber(hour)) {
    const at = `${pad(Number(hour))}:${pad(Number(minute))}`;
    if (anyDay && dow === '*') {
      return _('every day at %1', at) + tz;
    }
    if (anyDay && (dow === '1-5' || dow === 'MON-FRI' || dow === 'mon-fri')) {
      return _('weekdays at %1', at) + tz;
    }
    if (anyDay && /^[0-7]$/.test(dow)) {
      return _('every %1 at %2', _(DAY_NAMES[Number(dow) % 7]), at) + tz;
    }
    if (month === '*' && dow === '*' && isNumber(dom)) {
      return _('day %1 of every month at %2', Number(dom), at) + tz;
    }
  }
  return _('cron "%1"', cron.trim()) + tz;
}

/**
 * A trigger in plain words, for lists. `locale` formats the time of a `once` trigger;
 * `jobNames` (id → name) names the upstream jobs of an `after` trigger.
 */
export function describeTrigger(
  trigger: Trigger,
  _: Gettext = identity,
  locale?: string,
  jobNames?: Record<string, string>
): string {
  switch (trigger.kind) {
    case 'cron':
      return describeCron(trigger.cron, trigger.timezone ?? 'UTC', _);
    case 'interval':
      return describeEvery(trigger.every_seconds, _);
    case 'once':
      return _('once, at %1', formatTime(trigger.at, locale));
    case 'manual':
      return _('only when run by hand');
    case 'event':
      return _('on event “%1”', trigger.event);
    case 'after': {
      const names = trigger.jobs.map(id => jobNames?.[id] ?? id).join(', ');
      const condition = trigger.condition ?? 'success';
      return condition === 'success'
        ? _('after %1 succeeds', names)
        : condition === 'failure'
          ? _('after %1 fails', names)
          : _('after %1 ends', names);
    }
    default:
      return _('unknown trigger');
  }
}

/** An ISO time as local date and time, minute precision. */
export function formatTime(iso: string | null | undefined, locale?: string): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return date.toLocaleString(locale, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
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
        return {
          ok: false,
          errors: { 'trigger.cron': _('Enter a cron expression or pick a preset.') }
        };
      }
      const value: Trigger = { kind: 'cron', cron };
      if (form.timezone.trim()) {
        value.timezone = form.timezone.trim();
      }
      return { ok: true, value };
    }
    case 'interval': {
      const n = Number(form.every.trim());
      if (!form.every.trim() || !Number.isFinite(n) || n <= 0) {
        return {
          ok: false,
          errors: { 'trigger.every_seconds': _('Enter a positive number.') }
        };
      }
      const seconds = n * UNIT_SECONDS[form.unit];
      if (seconds < 1) {
        return {
          ok: false,
          errors: { 'trigger.every_seconds': _('The interval must be at least 1 second.') }
        };
      }
      return { ok: true, value: { kind: 'interval', every_seconds: seconds } };
    }
    case 'once': {
      const date = new Date(form.at);
      if (!form.at || Number.isNaN(date.getTime())) {
        return { ok: false, errors: { 'trigger.at': _('Pick a date and time.') } };
      }
      return { ok: true, value: { kind: 'once', at: date.toISOString() } };
    }
    case 'event': {
      const event = form.event.trim();
      if (!event) {
        return {
          ok: false,
          errors: { 'trigger.event': _('Name the event, such as sales.loaded.') }
        };
      }
      return { ok: true, value: { kind: 'event', event } };
    }
    case 'after': {
      if (!form.afterJobs.length) {
        return { ok: false, errors: { 'trigger.jobs': _('Pick at least one job to wait for.') } };
      }
      return {
        ok: true,
        value: {
          kind: 'after',
          jobs: [...form.afterJobs],
          condition: form.condition,
          pass_results: form.passResults
        }
      };
    }
  }
}
