/**
 * The create/edit dialog's form: its state as typed, and how it becomes an API body or a
 * list of errors by field. Pure: no DOM, no JupyterLab.
 *
 * Each rule checked here is the server's own (jupyter_sched/schemas.py), so the form never
 * refuses what the server takes; the rules it leaves out (upper bounds, most lengths) are
 * the server's to check, and its answer names the field. validation.test.ts holds these
 * rules equal to the server's openapi.json.
 */
import { formField } from './api';
import type {
  JobCreate,
  Misfire,
  NotebookParameter,
  NotificationTarget,
  NotifyOn,
  OutputFormat,
  Overlap,
  WebhookFormat
} from './api';
import { Gettext, identity } from './i18n';
import type { SweepForm } from './sweep';
import { Checked, TriggerForm, formToTrigger } from './triggers';

/** The input a parameter of type `type` gets. */
export type ParameterInput = 'text' | 'integer' | 'number' | 'boolean' | 'json';

export function parameterInput(type: string): ParameterInput {
  switch (type) {
    case 'int':
      return 'integer';
    case 'float':
      return 'number';
    case 'bool':
      return 'boolean';
    case 'str':
      return 'text';
    default:
      return 'json';
  }
}

/** A parameter's value as the form shows it. */
export function parameterText(type: string, value: unknown): string {
  const input = parameterInput(type);
  if (input === 'text') {
    return typeof value === 'string' ? value : JSON.stringify(value ?? '');
  }
  if (input === 'boolean') {
    return value ? 'true' : 'false';
  }
  if (input === 'json') {
    if (value === undefined) {
      return '';
    }
    const compact = JSON.stringify(value);
    return compact.length <= 60 ? compact : JSON.stringify(value, null, 2);
  }
  return value === undefined || value === null ? '' : String(value);
}

/**
 * The value of a parameter of type `type` typed as `text`, or why it is not one.
 * `int` takes whole numbers, `float` any number, `bool` true/false, `str` any text; `list`,
 * `dict` and untyped parameters take JSON (`list` must be an array, `dict` an object).
 */
export function parseParameter(
  type: string,
  text: string,
  _: Gettext = identity
): { ok: true; value: unknown } | { ok: false; error: string } {
  const input = parameterInput(type);
  const t = text.trim();
  switch (input) {
    case 'text':
      return { ok: true, value: text };
    case 'boolean':
      if (t === 'true' || t === 'false') {
        return { ok: true, value: t === 'true' };
      }
      return { ok: false, error: _('Expected true or false.') };
    case 'integer':
      if (/^[-+]?\d+$/.test(t)) {
        const n = Number(t);
        if (Number.isSafeInteger(n)) {
          return { ok: true, value: n };
        }
        return { ok: false, error: _('This whole number is too large.') };
      }
      return { ok: false, error: _('Expected a whole number, such as 7.') };
    case 'number': {
      const n = Number(t);
      if (t !== '' && Number.isFinite(n)) {
        return { ok: true, value: n };
      }
      return { ok: false, error: _('Expected a number, such as 0.5.') };
    }
    case 'json': {
      let value: unknown;
      try {
        value = JSON.parse(t);
      } catch (error) {
        return { ok: false, error: _('Not valid JSON: %1', (error as Error).message) };
      }
      if (type === 'list' && !Array.isArray(value)) {
        return { ok: false, error: _('Expected a JSON list, such as ["a", "b"].') };
      }
      if (
        type === 'dict' &&
        (value === null || typeof value !== 'object' || Array.isArray(value))
      ) {
        return { ok: false, error: _('Expected a JSON object, such as {"key": 1}.') };
      }
      return { ok: true, value };
    }
  }
}

/** Everything the dialog holds, as typed. */
export interface JobForm {
  name: string;
  notebook: string;
  /** Parameter name → text as typed. */
  parameters: Record<string, string>;
  trigger: TriggerForm;
  kernel: string;
  retries: string;
  retryDelay: string;
  retryBackoff: string;
  timeout: string;
  overlap: Overlap;
  misfire: Misfire;
  outputFormats: OutputFormat[];
  tags: string;
  /** Where to tell about runs (left out: the job's are not changed). */
  notifications?: NotificationForm[];
  /** Keep finished runs this many days ('' = the server's default). */
  retentionDays?: string;
  /** Keep the newest this many finished runs ('' = the server's default). */
  retentionRuns?: string;
  /** The parameter sweep's grid (left out: the job's sweep is not changed). */
  sweep?: SweepForm;
}

/** A number's rule on the server: whole or not, and its lower bound. */
export interface NumberRule {
  integer?: boolean;
  /** The least value allowed. */
  minimum?: number;
  /** The value that must be exceeded. */
  exclusiveMinimum?: number;
}

/** The server's rules of the numbers the form reads, by API field. */
export const NUMBER_RULES = {
  retries: { integer: true, minimum: 0 },
  retry_delay_seconds: { minimum: 0 },
  retry_backoff: { minimum: 1 },
  timeout_seconds: { exclusiveMinimum: 0 },
  retention_days: { exclusiveMinimum: 0 },
  retention_runs: { integer: true, minimum: 1 },
  slower_than_seconds: { exclusiveMinimum: 0 }
} as const satisfies Record<string, NumberRule>;

/** The longest job name, in characters (code points, as Python counts them). */
export const NAME_MAX_LENGTH = 200;

/** The longest tag, in characters. */
export const TAG_MAX_LENGTH = 50;

/**
 * A tag: the server's `^[\w .:/-]+$`. pydantic matches it with Rust's regex crate, whose
 * `\w` is Unicode's word class (UTS #18): spelled out here, since JavaScript's `\w` is ASCII.
 */
export const TAG_PATTERN = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control} .:/-]+$/u;

/** An email address, as the server checks it: something, an @, something. */
export const EMAIL_PATTERN = /^[^@\s]+@[^@\s]+$/;

/** A webhook URL, as the server checks it: it starts with http:// or https://. */
export const WEBHOOK_URL_PATTERN = /^https?:\/\//;

/** The length of `text` in characters (code points), as the server counts it. */
const length = (text: string): number => [...text].length;

/** A notification target as typed: a webhook URL, or email addresses. */
export interface NotificationForm {
  kind: 'webhook' | 'email';
  /** The webhook's URL. */
  url: string;
  format: WebhookFormat;
  /** The email addresses, comma or space separated. */
  to: string;
  on: NotifyOn[];
  /** Seconds after which a run is "slow" ('' = none). */
  slowerThan: string;
}

export function newNotificationForm(kind: NotificationForm['kind']): NotificationForm {
  return { kind, url: '', format: 'json', to: '', on: ['failure'], slowerThan: '' };
}

/** The form of a job's notification targets. */
export function notificationsToForm(
  targets: readonly NotificationTarget[] | null | undefined
): NotificationForm[] {
  return (targets ?? []).map(t => ({
    ...newNotificationForm(t.kind),
    url: t.kind === 'webhook' ? t.url : '',
    format: t.kind === 'webhook' ? (t.format ?? 'json') : 'json',
    to: t.kind === 'email' ? t.to.join(', ') : '',
    on: [...(t.on ?? ['failure'])],
    slowerThan:
      t.slower_than_seconds !== null && t.slower_than_seconds !== undefined
        ? String(t.slower_than_seconds)
        : ''
  }));
}

/**
 * The notification targets the forms describe; errors are set in `errors` by the server's
 * field names ("notifications.0.url").
 */
export function formToNotifications(
  forms: readonly NotificationForm[],
  errors: Record<string, string>,
  _: Gettext = identity
): NotificationTarget[] {
  return forms.map((form, i) => formToNotification(form, `notifications.${i}`, errors, _));
}

function formToNotification(
  form: NotificationForm,
  at: string,
  errors: Record<string, string>,
  _: Gettext
): NotificationTarget {
  if (!form.on.length) {
    errors[`${at}.on`] = _('Choose when to notify.');
  }
  const slowerField = `${at}.slower_than_seconds`;
  const slower = numberField(
    form.slowerThan,
    slowerField,
    errors,
    NUMBER_RULES.slower_than_seconds,
    _
  );
  if (form.on.includes('slow') && slower === null && !errors[slowerField]) {
    errors[slowerField] = _('Say after how many seconds a run is slow.');
  }
  const common = { on: form.on, slower_than_seconds: slower ?? null };
  if (form.kind === 'webhook') {
    const url = form.url.trim();
    if (!WEBHOOK_URL_PATTERN.test(url)) {
      errors[`${at}.url`] = _('Expected an http:// or https:// URL.');
    }
    return { kind: 'webhook', url, format: form.format, ...common };
  }
  const to = [...new Set(form.to.split(/[,;\s]+/).filter(Boolean))];
  const bad = to.find(a => !EMAIL_PATTERN.test(a));
  if (!to.length) {
    errors[`${at}.to`] = _('Give at least one email address.');
  } else if (bad !== undefined) {
    errors[`${at}.to`] = _('“%1” is not an email address.', bad);
  }
  return { kind: 'email', to, ...common };
}

/**
 * The number typed in `text` when it keeps `rule`; `null` when it is empty; `undefined`
 * when it is refused, with the reason in `errors[field]`.
 */
function numberField(
  text: string,
  field: string,
  errors: Record<string, string>,
  rule: NumberRule,
  _: Gettext
): number | null | undefined {
  const t = text.trim();
  if (!t) {
    return null;
  }
  const n = Number(t);
  if (!Number.isFinite(n) || (rule.integer && !Number.isInteger(n))) {
    errors[field] = rule.integer ? _('Expected a whole number.') : _('Expected a number.');
    return undefined;
  }
  if (rule.minimum !== undefined && n < rule.minimum) {
    errors[field] = _('Must be at least %1.', rule.minimum);
    return undefined;
  }
  if (rule.exclusiveMinimum !== undefined && n <= rule.exclusiveMinimum) {
    errors[field] = _('Must be more than %1.', rule.exclusiveMinimum);
    return undefined;
  }
  return n;
}

/** A number the server requires: `null` (empty) is an error too. */
function requiredNumber(
  text: string,
  field: string,
  errors: Record<string, string>,
  rule: NumberRule,
  _: Gettext
): number | undefined {
  const n = numberField(text, field, errors, rule, _);
  if (n === null) {
    errors[field] = _('Required.');
    return undefined;
  }
  return n;
}

/** Tags typed as "a, b c" (commas or spaces). */
export function parseTags(text: string): string[] {
  return [...new Set(text.split(/[,\s]+/).filter(Boolean))];
}

/**
 * The body of `POST jobs` the form describes, or the errors by field. Only parameters
 * that differ from the notebook's defaults are sent, so a later change of a default in
 * the notebook applies to the job.
 */
export function formToJob(
  form: JobForm,
  declared: NotebookParameter[],
  _: Gettext = identity
): Checked<JobCreate> {
  const errors: Record<string, string> = {};
  const name = form.name.trim();
  if (!name) {
    errors.name = _('Give the job a name.');
  } else if (length(name) > NAME_MAX_LENGTH) {
    errors.name = _('At most %1 characters.', NAME_MAX_LENGTH);
  }
  const notebook = form.notebook.trim();
  if (!notebook) {
    errors.notebook = _('Choose a notebook.');
  } else if (!notebook.endsWith('.ipynb')) {
    errors.notebook = _('A notebook path ends with .ipynb.');
  }
  const parameters = formToParameters(form.parameters, declared, errors, _);
  const trigger = formToTrigger(form.trigger, _);
  if (!trigger.ok) {
    Object.assign(errors, trigger.errors);
  }
  const settings = formToSettings(form, errors, _);
  if (Object.keys(errors).length || !trigger.ok || !settings) {
    return { ok: false, errors };
  }
  return { ok: true, value: { name, notebook, parameters, trigger: trigger.value, ...settings } };
}

/** The parameters that differ from the notebook's defaults; errors by `parameters.<name>`. */
function formToParameters(
  texts: Record<string, string>,
  declared: NotebookParameter[],
  errors: Record<string, string>,
  _: Gettext
): JobCreate['parameters'] {
  const parameters: Record<string, unknown> = {};
  for (const param of declared) {
    const text = texts[param.name];
    if (text === undefined) {
      continue;
    }
    const parsed = parseParameter(param.type, text, _);
    if (!parsed.ok) {
      errors[`parameters.${param.name}`] = parsed.error;
    } else if (JSON.stringify(parsed.value) !== JSON.stringify(param.default)) {
      parameters[param.name] = parsed.value;
    }
  }
  return parameters as JobCreate['parameters'];
}

type Settings = Omit<JobCreate, 'name' | 'notebook' | 'parameters' | 'trigger'>;

/** The advanced settings of the form (the body's other fields), or undefined on errors. */
function formToSettings(
  form: JobForm,
  errors: Record<string, string>,
  _: Gettext
): Settings | undefined {
  const retries = requiredNumber(form.retries, 'retries', errors, NUMBER_RULES.retries, _);
  const retryDelay = requiredNumber(
    form.retryDelay,
    'retries',
    errors,
    NUMBER_RULES.retry_delay_seconds,
    _
  );
  const retryBackoff = requiredNumber(
    form.retryBackoff,
    'retries',
    errors,
    NUMBER_RULES.retry_backoff,
    _
  );
  const timeout = numberField(
    form.timeout,
    'timeout_seconds',
    errors,
    NUMBER_RULES.timeout_seconds,
    _
  );
  const tags = parseTags(form.tags);
  const badTag = tags.find(t => length(t) > TAG_MAX_LENGTH || !TAG_PATTERN.test(t));
  if (badTag !== undefined) {
    errors.tags = _(
      'Tag "%1": use letters, digits and . : / - _ (at most %2).',
      badTag,
      TAG_MAX_LENGTH
    );
  }
  const notifications = form.notifications
    ? formToNotifications(form.notifications, errors, _)
    : undefined;
  const retention = formToRetention(form, errors, _);
  if (retries === undefined || retryDelay === undefined || retryBackoff === undefined) {
    return undefined;
  }
  const settings: Settings = {
    kernel: form.kernel.trim() || null,
    retries,
    retry_delay_seconds: retryDelay,
    retry_backoff: retryBackoff,
    timeout_seconds: timeout ?? null,
    overlap: form.overlap,
    misfire: form.misfire,
    output_formats: ['ipynb', ...form.outputFormats.filter(f => f !== 'ipynb')],
    tags
  };
  if (notifications) {
    settings.notifications = notifications;
  }
  return { ...settings, ...retention };
}

/** The retention fields the form has (left out: unchanged), empty as null. */
function formToRetention(
  form: JobForm,
  errors: Record<string, string>,
  _: Gettext
): Pick<JobCreate, 'retention_days' | 'retention_runs'> {
  const retention: Pick<JobCreate, 'retention_days' | 'retention_runs'> = {};
  if (form.retentionDays !== undefined) {
    const days = numberField(
      form.retentionDays,
      'retention_days',
      errors,
      NUMBER_RULES.retention_days,
      _
    );
    if (days !== undefined) {
      retention.retention_days = days;
    }
  }
  if (form.retentionRuns !== undefined) {
    const runs = numberField(
      form.retentionRuns,
      'retention_runs',
      errors,
      NUMBER_RULES.retention_runs,
      _
    );
    if (runs !== undefined) {
      retention.retention_runs = runs;
    }
  }
  return retention;
}

/** The API fields the dialog shows an error next to (besides parameters and notifications). */
const FIELDS_WITH_ERRORS = new Set([
  'name',
  'notebook',
  'trigger',
  'trigger.cron',
  'trigger.timezone',
  'trigger.every_seconds',
  'trigger.at',
  'trigger.event',
  'trigger.jobs',
  'kernel',
  'retries',
  'timeout_seconds',
  'overlap',
  'misfire',
  'output_formats',
  'tags',
  'retention_days',
  'retention_runs',
  'notifications'
]);

/**
 * Where the dialog shows the server's error on API field `field`: next to the form field
 * (see formField), or at the top (''). A cron trigger's error on no part of it shows at
 * its expression.
 */
export function errorField(
  field: string | null | undefined,
  form: JobForm,
  declared: readonly NotebookParameter[]
): string {
  const shown = formField(field);
  if (shown === 'trigger' && form.trigger.kind === 'cron') {
    return 'trigger.cron';
  }
  if (form.sweep && (shown === 'sweep' || shown.startsWith('sweep.'))) {
    // `sweep.<set>.<name>`: at that parameter's row of the grid when it has one
    const name = shown.split('.').slice(2).join('.');
    return name && form.sweep.rows.some(row => row.name.trim() === name)
      ? `sweep.${name}`
      : 'sweep';
  }
  if (form.sweep && shown === 'max_parallel') {
    return shown;
  }
  const ours =
    FIELDS_WITH_ERRORS.has(shown) ||
    declared.some(p => shown === `parameters.${p.name}`) ||
    /^notifications\.\d+(\.|$)/.test(shown);
  return ours ? shown : '';
}
