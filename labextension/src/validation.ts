/**
 * The create/edit dialog's form: its state as typed, and how it becomes an API body or a
 * list of errors by field. Pure: no DOM, no JupyterLab.
 */
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
import { Checked, Gettext, TriggerForm, formToTrigger, identity } from './triggers';

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
}

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
  const targets: NotificationTarget[] = [];
  forms.forEach((form, i) => {
    const at = `notifications.${i}`;
    if (!form.on.length) {
      errors[`${at}.on`] = _('Choose when to notify.');
    }
    const slower = numberField(
      form.slowerThan,
      `${at}.slower_than_seconds`,
      errors,
      { min: 1, optional: true },
      _
    );
    if (
      form.on.includes('slow') &&
      (slower === null || slower === undefined) &&
      !errors[`${at}.slower_than_seconds`]
    ) {
      errors[`${at}.slower_than_seconds`] = _('Say after how many seconds a run is slow.');
    }
    const common = { on: form.on, slower_than_seconds: slower ?? null };
    if (form.kind === 'webhook') {
      const url = form.url.trim();
      if (!/^https?:\/\/\S+$/.test(url)) {
        errors[`${at}.url`] = _('Expected an http:// or https:// URL.');
      }
      targets.push({ kind: 'webhook', url, format: form.format, ...common });
    } else {
      const to = [...new Set(form.to.split(/[,;\s]+/).filter(Boolean))];
      const bad = to.find(a => !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(a));
      if (!to.length) {
        errors[`${at}.to`] = _('Give at least one email address.');
      } else if (bad !== undefined) {
        errors[`${at}.to`] = _('“%1” is not an email address.', bad);
      }
      targets.push({ kind: 'email', to, ...common });
    }
  });
  return targets;
}

function numberField(
  text: string,
  field: string,
  errors: Record<string, string>,
  opts: { integer?: boolean; min?: number; optional?: boolean },
  _: Gettext
): number | null | undefined {
  const t = text.trim();
  if (!t) {
    if (opts.optional) {
      return null;
    }
    errors[field] = _('Required.');
    return undefined;
  }
  const n = Number(t);
  if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) {
    errors[field] = opts.integer ? _('Expected a whole number.') : _('Expected a number.');
    return undefined;
  }
  if (opts.min !== undefined && n < opts.min) {
    errors[field] = _('Must be at least %1.', opts.min);
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
  } else if (name.length > 200) {
    errors.name = _('At most 200 characters.');
  }
  const notebook = form.notebook.trim();
  if (!notebook) {
    errors.notebook = _('Choose a notebook.');
  } else if (!notebook.endsWith('.ipynb')) {
    errors.notebook = _('A notebook path ends with .ipynb.');
  }
  const parameters: Record<string, unknown> = {};
  for (const param of declared) {
    const text = form.parameters[param.name];
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
  const trigger = formToTrigger(form.trigger, _);
  if (!trigger.ok) {
    Object.assign(errors, trigger.errors);
  }
  const retries = numberField(form.retries, 'retries', errors, { integer: true, min: 0 }, _);
  const retryDelay = numberField(form.retryDelay, 'retries', errors, { min: 0 }, _);
  const retryBackoff = numberField(form.retryBackoff, 'retries', errors, { min: 1 }, _);
  const timeout = numberField(
    form.timeout,
    'timeout_seconds',
    errors,
    { min: 1, optional: true },
    _
  );
  const tags = parseTags(form.tags);
  const badTag = tags.find(t => !/^[\w .:/-]{1,50}$/.test(t));
  if (badTag !== undefined) {
    errors.tags = _('Tag "%1": use letters, digits and . : / - _ (at most 50).', badTag);
  }
  const notifications = form.notifications
    ? formToNotifications(form.notifications, errors, _)
    : undefined;
  const retentionDays =
    form.retentionDays !== undefined
      ? numberField(
          form.retentionDays,
          'retention_days',
          errors,
          { integer: true, min: 1, optional: true },
          _
        )
      : undefined;
  const retentionRuns =
    form.retentionRuns !== undefined
      ? numberField(
          form.retentionRuns,
          'retention_runs',
          errors,
          { integer: true, min: 1, optional: true },
          _
        )
      : undefined;
  if (Object.keys(errors).length || !trigger.ok) {
    return { ok: false, errors };
  }
  const body: JobCreate = {
    name,
    notebook,
    parameters: parameters as JobCreate['parameters'],
    trigger: trigger.value,
    kernel: form.kernel.trim() || null,
    retries: retries as number,
    retry_delay_seconds: retryDelay as number,
    retry_backoff: retryBackoff as number,
    timeout_seconds: timeout ?? null,
    overlap: form.overlap,
    misfire: form.misfire,
    output_formats: ['ipynb', ...form.outputFormats.filter(f => f !== 'ipynb')],
    tags
  };
  if (notifications) {
    body.notifications = notifications;
  }
  if (retentionDays !== undefined) {
    body.retention_days = retentionDays;
  }
  if (retentionRuns !== undefined) {
    body.retention_runs = retentionRuns;
  }
  return { ok: true, value: body };
}
