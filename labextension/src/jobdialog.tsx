/**
 * The create / edit job dialog: name, notebook, a parameters form built from the
 * notebook's parameters cell, the trigger editor with the server's preview, and the
 * advanced settings. It stays open, with everything typed, when the server refuses.
 */
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  ApiError,
  Job,
  NotebookParameter,
  OutputFormat,
  Preview,
  Run,
  SchedAPI,
  formField
} from './api';
import { Field } from './components';
import {
  Gettext,
  TriggerForm,
  cronPresets,
  defaultTriggerForm,
  formToTrigger,
  formatTime,
  triggerToForm
} from './triggers';
import {
  JobForm,
  NotificationForm,
  formToJob,
  newNotificationForm,
  notificationsToForm,
  parameterInput,
  parameterText,
  parseParameter
} from './validation';

export interface JobDialogOptions {
  api: SchedAPI;
  trans: TranslationBundle;
  /** Edit this job; else create one. */
  job?: Job;
  /** The notebook of a new job. */
  path?: string;
  timezone: string;
  outputFormats: OutputFormat[];
  kernelNames: string[];
  /** Jobs an `after` trigger can wait for. */
  jobs: { id: string; name: string }[];
}

export interface JobDialogResult {
  job: Job;
  /** The run started at once ("Run now"). */
  run?: Run;
}

/** Opens the dialog; resolves with what was created or saved, or null if cancelled. */
export async function showJobDialog(options: JobDialogOptions): Promise<JobDialogResult | null> {
  const { trans } = options;
  const body = new JobEditor(options);
  const dialog = new SubmitDialog<JobDialogResult | null>(
    {
      title: options.job ? trans.__('Edit “%1”', options.job.name) : trans.__('Schedule notebook'),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: options.job ? trans.__('Save') : trans.__('Create') })
      ],
      defaultButton: 1,
      focusNodeSelector: 'input[name="name"]'
    },
    () => body.submit()
  );
  dialog.addClass('jp-sched-dialog');
  const result = await dialog.launch();
  return result.button.accept ? result.value : null;
}

/** A dialog whose accept button runs `submit` first and closes only when it succeeds. */
class SubmitDialog<T> extends Dialog<T> {
  constructor(
    options: Partial<Dialog.IOptions<T>>,
    private submit: () => Promise<boolean>
  ) {
    super(options);
    this._buttonsGiven = options.buttons ?? [];
    this._default = options.defaultButton ?? this._buttonsGiven.length - 1;
  }

  resolve(index?: number): void {
    const button = this._buttonsGiven[index ?? this._default];
    if (!button?.accept) {
      super.resolve(index);
      return;
    }
    if (this._busy) {
      return;
    }
    this._busy = true;
    this.node.classList.add('jp-sched-mod-busy');
    void this.submit().then(ok => {
      this._busy = false;
      this.node.classList.remove('jp-sched-mod-busy');
      if (ok && !this.isDisposed) {
        super.resolve(index);
      }
    });
  }

  private _buttonsGiven: readonly Dialog.IButton[];
  private _default: number;
  private _busy = false;
}

interface EditorState {
  form: JobForm;
  declared: NotebookParameter[];
  /** Errors by field ('' = the whole form). */
  errors: Record<string, string>;
  loadingParameters: boolean;
  preview: Preview | null;
  previewPending: boolean;
  result: JobDialogResult | null;
}

function browserTimezone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function timezones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf(
      'timeZone'
    );
  } catch {
    return ['UTC'];
  }
}

function initialForm(options: JobDialogOptions): JobForm {
  const tz = options.timezone || browserTimezone();
  const job = options.job;
  if (job) {
    return {
      name: job.name,
      notebook: job.notebook,
      parameters: {},
      trigger: triggerToForm(job.trigger, tz),
      kernel: job.kernel ?? '',
      retries: String(job.retries),
      retryDelay: String(job.retry_delay_seconds),
      retryBackoff: String(job.retry_backoff),
      timeout: job.timeout_seconds ? String(job.timeout_seconds) : '',
      overlap: job.overlap,
      misfire: job.misfire,
      outputFormats: job.output_formats.filter(
        (f): f is OutputFormat => f === 'ipynb' || f === 'html'
      ),
      tags: job.tags.join(', '),
      notifications: notificationsToForm(job.notifications),
      retentionDays:
        job.retention_days !== null && job.retention_days !== undefined
          ? String(job.retention_days)
          : '',
      retentionRuns:
        job.retention_runs !== null && job.retention_runs !== undefined
          ? String(job.retention_runs)
          : ''
    };
  }
  const path = options.path ?? '';
  const base = path.split('/').pop() ?? '';
  return {
    name: base.replace(/\.ipynb$/, ''),
    notebook: path,
    parameters: {},
    trigger: defaultTriggerForm(tz),
    kernel: '',
    retries: '0',
    retryDelay: '60',
    retryBackoff: '2',
    timeout: '',
    overlap: 'allow',
    misfire: 'run_once',
    outputFormats: ['ipynb', ...options.outputFormats.filter(f => f !== 'ipynb')],
    tags: '',
    notifications: [],
    retentionDays: '',
    retentionRuns: ''
  };
}

class JobEditor extends ReactWidget {
  constructor(private options: JobDialogOptions) {
    super();
    this.addClass('jp-sched-editor');
    this._ = options.trans.__.bind(options.trans);
    this.state = {
      form: initialForm(options),
      declared: [],
      errors: {},
      loadingParameters: false,
      preview: null,
      previewPending: false,
      result: null
    };
    if (this.state.form.notebook) {
      void this.loadParameters(this.state.form.notebook, true);
    }
    this.schedulePreview();
  }

  /** The dialog's value once it is accepted. */
  getValue(): JobDialogResult | null {
    return this.state.result;
  }

  dispose(): void {
    window.clearTimeout(this._previewTimer);
    window.clearTimeout(this._paramsTimer);
    this._previewAbort?.abort();
    super.dispose();
  }

  /** Check, then create or save; true when done (the dialog may close). */
  async submit(): Promise<boolean> {
    const _ = this._;
    const checked = formToJob(this.state.form, this.state.declared, _);
    if (!checked.ok) {
      this.setErrors(checked.errors);
      this.focusFirstError();
      return false;
    }
    const { api, job } = this.options;
    try {
      let result: JobDialogResult;
      if (job) {
        const saved = await api.updateJob(job.id, { ...checked.value, version: job.version });
        result = { job: saved };
      } else {
        const created = await api.createJob(checked.value);
        result = { job: created };
        if (this.state.form.trigger.kind === 'now') {
          result.run = await api.runJob(created.id);
        }
      }
      this.state = { ...this.state, result, errors: {} };
      return true;
    } catch (error) {
      this.showServerError(error);
      return false;
    }
  }

  render(): JSX.Element {
    return <EditorView editor={this} state={this.state} options={this.options} _={this._} />;
  }

  // -- what the view calls --------------------------------------------------------------

  change(changes: Partial<JobForm>, touched: string[] = []): void {
    const errors = { ...this.state.errors };
    for (const field of touched) {
      delete errors[field];
    }
    delete errors[''];
    this.state = { ...this.state, form: { ...this.state.form, ...changes }, errors };
    this.update();
  }

  setParameter(name: string, text: string): void {
    const param = this.state.declared.find(p => p.name === name);
    const errors = { ...this.state.errors };
    delete errors[`parameters.${name}`];
    if (param) {
      const parsed = parseParameter(param.type, text, this._);
      if (!parsed.ok) {
        errors[`parameters.${name}`] = parsed.error;
      }
    }
    this.state = {
      ...this.state,
      form: { ...this.state.form, parameters: { ...this.state.form.parameters, [name]: text } },
      errors
    };
    this.update();
  }

  setTrigger(changes: Partial<TriggerForm>): void {
    const trigger = { ...this.state.form.trigger, ...changes };
    const errors = { ...this.state.errors };
    for (const key of Object.keys(errors)) {
      if (key.startsWith('trigger')) {
        delete errors[key];
      }
    }
    this.state = { ...this.state, form: { ...this.state.form, trigger }, errors };
    this.update();
    this.schedulePreview();
  }

  setNotebook(path: string): void {
    this.change({ notebook: path }, ['notebook']);
    window.clearTimeout(this._paramsTimer);
    this._paramsTimer = window.setTimeout(() => void this.loadParameters(path, false), 400);
  }

  // -- server calls ---------------------------------------------------------------------

  private async loadParameters(path: string, first: boolean): Promise<void> {
    if (!path.trim().endsWith('.ipynb')) {
      this.state = { ...this.state, declared: [] };
      this.update();
      return;
    }
    this.state = { ...this.state, loadingParameters: true };
    this.update();
    try {
      const { parameters } = await this.options.api.notebookParameters(path.trim());
      if (this.isDisposed || path !== this.state.form.notebook) {
        return;
      }
      const values: Record<string, string> = {};
      const saved = first ? (this.options.job?.parameters ?? {}) : {};
      for (const p of parameters) {
        const previous = this.state.form.parameters[p.name];
        values[p.name] =
          previous ?? parameterText(p.type, p.name in saved ? saved[p.name] : p.default);
      }
      const errors = { ...this.state.errors };
      delete errors.notebook;
      this.state = {
        ...this.state,
        declared: parameters,
        form: { ...this.state.form, parameters: values },
        errors,
        loadingParameters: false
      };
    } catch (error) {
      if (this.isDisposed) {
        return;
      }
      const e = error instanceof ApiError ? error : new ApiError(String(error), 0);
      this.state = {
        ...this.state,
        declared: [],
        loadingParameters: false,
        errors: { ...this.state.errors, notebook: e.message }
      };
    }
    this.update();
  }

  private schedulePreview(): void {
    window.clearTimeout(this._previewTimer);
    const kind = this.state.form.trigger.kind;
    if (kind === 'now' || kind === 'manual' || kind === 'event' || kind === 'after') {
      this._previewAbort?.abort();
      this.state = { ...this.state, preview: null, previewPending: false };
      this.update();
      return;
    }
    this.state = { ...this.state, previewPending: true };
    this._previewTimer = window.setTimeout(() => void this.preview(), 300);
  }

  private async preview(): Promise<void> {
    const trigger = formToTrigger(this.state.form.trigger, this._);
    if (!trigger.ok) {
      this.state = {
        ...this.state,
        preview: null,
        previewPending: false,
        errors: { ...this.state.errors, ...trigger.errors }
      };
      this.update();
      return;
    }
    this._previewAbort?.abort();
    const abort = (this._previewAbort = new AbortController());
    try {
      const preview = await this.options.api.preview(
        { trigger: trigger.value, count: 5 },
        { signal: abort.signal }
      );
      if (abort.signal.aborted || this.isDisposed) {
        return;
      }
      this.state = { ...this.state, preview, previewPending: false };
    } catch (error) {
      if (abort.signal.aborted || this.isDisposed) {
        return;
      }
      const e = error instanceof ApiError ? error : new ApiError(String(error), 0);
      const field = formField(e.field);
      this.state = {
        ...this.state,
        preview: null,
        previewPending: false,
        errors: {
          ...this.state.errors,
          [field.startsWith('trigger') ? field : 'trigger']: e.message
        }
      };
    }
    this.update();
  }

  private showServerError(error: unknown): void {
    const e = error instanceof ApiError ? error : new ApiError(String(error), 0);
    let field = formField(e.field);
    if (field === 'trigger' || field.startsWith('trigger.')) {
      field =
        this.state.form.trigger.kind === 'cron' && field === 'trigger' ? 'trigger.cron' : field;
    }
    const known = new Set([
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
      ...this.state.declared.map(p => `parameters.${p.name}`)
    ]);
    const message =
      e.status === 409
        ? this._('%1 Reopen the job to see its current settings.', e.message)
        : e.unreachable
          ? this._('Cannot reach the server: nothing was saved. Try again.')
          : e.message;
    const ours =
      known.has(field) ||
      field === 'retention_days' ||
      field === 'retention_runs' ||
      /^notifications\.\d+(\.|$)/.test(field);
    this.setErrors({ [ours ? field : '']: message });
    this.focusFirstError();
  }

  private setErrors(errors: Record<string, string>): void {
    this.state = { ...this.state, errors };
    this.update();
  }

  private focusFirstError(): void {
    requestAnimationFrame(() => {
      const node = this.node.querySelector('.jp-sched-mod-error, .jp-sched-form-error');
      node?.scrollIntoView({ block: 'nearest' });
      const advanced = node?.closest('details');
      if (advanced) {
        advanced.open = true;
      }
    });
  }

  state: EditorState;
  private _: Gettext;
  private _previewTimer = 0;
  private _paramsTimer = 0;
  private _previewAbort: AbortController | null = null;
}

function EditorView(props: {
  editor: JobEditor;
  state: EditorState;
  options: JobDialogOptions;
  _: Gettext;
}): JSX.Element {
  const { editor, state, options, _ } = props;
  const { form, errors } = state;
  const advancedErrors =
    [
      'kernel',
      'retries',
      'timeout_seconds',
      'overlap',
      'misfire',
      'output_formats',
      'tags',
      'retention_days',
      'retention_runs'
    ].some(f => errors[f]) || Object.keys(errors).some(f => f.startsWith('notifications'));
  return (
    <div className="jp-sched-form">
      {errors[''] && (
        <div className="jp-sched-banner jp-sched-banner-error jp-sched-form-error" role="alert">
          {errors['']}
        </div>
      )}
      <Field label={_('Name')} field="name" error={errors.name}>
        <input
          className="jp-mod-styled"
          name="name"
          value={form.name}
          maxLength={200}
          onChange={e => editor.change({ name: e.target.value }, ['name'])}
        />
      </Field>
      <Field
        label={_('Notebook')}
        field="notebook"
        error={errors.notebook}
        hint={_('Path relative to the server root, such as reports/sales.ipynb.')}
      >
        <input
          className="jp-mod-styled"
          name="notebook"
          value={form.notebook}
          placeholder="reports/sales.ipynb"
          onChange={e => editor.setNotebook(e.target.value)}
        />
      </Field>
      <fieldset className="jp-sched-fieldset" data-section="parameters">
        <legend>{_('Parameters')}</legend>
        {state.loadingParameters ? (
          <div className="jp-sched-muted">{_('Reading the notebook’s parameters cell…')}</div>
        ) : state.declared.length ? (
          state.declared.map(p => (
            <ParameterInput
              key={p.name}
              param={p}
              text={form.parameters[p.name] ?? ''}
              error={errors[`parameters.${p.name}`]}
              onChange={text => editor.setParameter(p.name, text)}
              _={_}
            />
          ))
        ) : (
          <div className="jp-sched-muted">
            {form.notebook.trim()
              ? _('This notebook has no cell tagged “parameters”: it runs as it is.')
              : _('Choose a notebook to see its parameters.')}
          </div>
        )}
        {errors.parameters && <div className="jp-sched-error">{errors.parameters}</div>}
      </fieldset>
      <TriggerEditor
        editor={editor}
        state={state}
        editing={!!options.job}
        jobs={options.jobs.filter(j => j.id !== options.job?.id)}
        _={_}
      />
      <details className="jp-sched-advanced" open={advancedErrors || undefined}>
        <summary>
          {_(
            'Advanced: kernel, retries, timeout, overlap, outputs, tags, retention, notifications'
          )}
        </summary>
        <Field label={_('Kernel')} field="kernel" error={errors.kernel}>
          <select
            className="jp-mod-styled"
            name="kernel"
            value={form.kernel}
            onChange={e => editor.change({ kernel: e.target.value }, ['kernel'])}
          >
            <option value="">{_('the notebook’s own kernel')}</option>
            {[...new Set([...options.kernelNames, ...(form.kernel ? [form.kernel] : [])])].map(
              k => (
                <option key={k} value={k}>
                  {k}
                </option>
              )
            )}
          </select>
        </Field>
        <Field
          label={_('Retries')}
          field="retries"
          error={errors.retries}
          hint={_(
            'A failed, timed-out or lost run is retried after the delay × backoff^(attempt − 1).'
          )}
        >
          <span className="jp-sched-inline">
            <input
              className="jp-mod-styled jp-sched-num"
              name="retries"
              type="number"
              min={0}
              max={100}
              value={form.retries}
              aria-label={_('Retries')}
              onChange={e => editor.change({ retries: e.target.value }, ['retries'])}
            />
            {_('delay')}
            <input
              className="jp-mod-styled jp-sched-num"
              name="retry_delay_seconds"
              type="number"
              min={0}
              value={form.retryDelay}
              aria-label={_('Retry delay in seconds')}
              onChange={e => editor.change({ retryDelay: e.target.value }, ['retries'])}
            />
            {_('s, backoff ×')}
            <input
              className="jp-mod-styled jp-sched-num"
              name="retry_backoff"
              type="number"
              min={1}
              max={10}
              step={0.5}
              value={form.retryBackoff}
              aria-label={_('Retry backoff factor')}
              onChange={e => editor.change({ retryBackoff: e.target.value }, ['retries'])}
            />
          </span>
        </Field>
        <Field
          label={_('Timeout (seconds)')}
          field="timeout_seconds"
          error={errors.timeout_seconds}
        >
          <input
            className="jp-mod-styled jp-sched-num"
            name="timeout_seconds"
            type="number"
            min={1}
            placeholder={_('none')}
            value={form.timeout}
            onChange={e => editor.change({ timeout: e.target.value }, ['timeout_seconds'])}
          />
        </Field>
        <Field label={_('When the previous run still runs')} field="overlap" error={errors.overlap}>
          <select
            className="jp-mod-styled"
            name="overlap"
            value={form.overlap}
            onChange={e =>
              editor.change({ overlap: e.target.value as JobForm['overlap'] }, ['overlap'])
            }
          >
            <option value="allow">{_('run both')}</option>
            <option value="skip">{_('skip the new run')}</option>
            <option value="queue">{_('queue the new run')}</option>
            <option value="replace">{_('cancel the old run')}</option>
          </select>
        </Field>
        <Field label={_('Missed fires (server was down)')} field="misfire" error={errors.misfire}>
          <select
            className="jp-mod-styled"
            name="misfire"
            value={form.misfire}
            onChange={e =>
              editor.change({ misfire: e.target.value as JobForm['misfire'] }, ['misfire'])
            }
          >
            <option value="run_once">{_('run once to catch up')}</option>
            <option value="skip">{_('skip them')}</option>
          </select>
        </Field>
        <Field label={_('Outputs')} field="output_formats" error={errors.output_formats}>
          <span className="jp-sched-inline">
            <label className="jp-sched-check">
              <input type="checkbox" checked disabled /> {_('notebook (always)')}
            </label>
            <label className="jp-sched-check">
              <input
                type="checkbox"
                name="output_html"
                checked={form.outputFormats.includes('html')}
                onChange={e =>
                  editor.change(
                    {
                      outputFormats: e.target.checked
                        ? ['ipynb', 'html']
                        : form.outputFormats.filter(f => f !== 'html')
                    },
                    ['output_formats']
                  )
                }
              />{' '}
              HTML
            </label>
          </span>
        </Field>
        <Field
          label={_('Tags')}
          field="tags"
          error={errors.tags}
          hint={_('Separated by commas or spaces.')}
        >
          <input
            className="jp-mod-styled"
            name="tags"
            value={form.tags}
            placeholder="finance, daily"
            onChange={e => editor.change({ tags: e.target.value }, ['tags'])}
          />
        </Field>
        <Field
          label={_('Keep runs')}
          field="retention_days"
          error={errors.retention_days}
          hint={_('Empty: the server’s default.')}
        >
          <span className="jp-sched-inline">
            <input
              className="jp-mod-styled"
              name="retention_days"
              inputMode="numeric"
              placeholder={_('days')}
              aria-label={_('Keep finished runs this many days')}
              value={form.retentionDays ?? ''}
              onChange={e => editor.change({ retentionDays: e.target.value }, ['retention_days'])}
            />{' '}
            {_('days')}
          </span>
        </Field>
        <Field
          label={_('Keep last')}
          field="retention_runs"
          error={errors.retention_runs}
          hint={_('Empty: the server’s default.')}
        >
          <span className="jp-sched-inline">
            <input
              className="jp-mod-styled"
              name="retention_runs"
              inputMode="numeric"
              placeholder={_('runs')}
              aria-label={_('Keep the newest this many finished runs')}
              value={form.retentionRuns ?? ''}
              onChange={e => editor.change({ retentionRuns: e.target.value }, ['retention_runs'])}
            />{' '}
            {_('runs')}
          </span>
        </Field>
        <NotificationsEditor
          targets={form.notifications ?? []}
          errors={errors}
          onChange={(notifications, touched) => editor.change({ notifications }, touched)}
          _={_}
        />
      </details>
    </div>
  );
}

const NOTIFY_ON: NotificationForm['on'] = ['failure', 'success', 'slow'];

/** The notification targets of the Advanced section: webhooks and email addresses. */
function NotificationsEditor(props: {
  targets: NotificationForm[];
  errors: Record<string, string>;
  onChange: (targets: NotificationForm[], touched: string[]) => void;
  _: Gettext;
}): JSX.Element {
  const { targets, errors, onChange, _ } = props;
  const onLabels: Record<string, string> = {
    failure: _('on failure'),
    success: _('on success'),
    slow: _('when slow')
  };
  const set = (i: number, changes: Partial<NotificationForm>, keys: string[]): void =>
    onChange(
      targets.map((t, j) => (j === i ? { ...t, ...changes } : t)),
      keys.map(k => `notifications.${i}.${k}`)
    );
  // Removing a target renumbers the ones after it: their errors no longer apply.
  const remove = (i: number): void =>
    onChange(
      targets.filter((_t, j) => j !== i),
      Object.keys(errors).filter(k => k.startsWith('notifications'))
    );
  return (
    <div className="jp-sched-notifications" data-section="notifications">
      <div className="jp-sched-label-text">{_('Notify')}</div>
      {errors.notifications && (
        <div className="jp-sched-error" role="alert" data-error-for="notifications">
          {errors.notifications}
        </div>
      )}
      {targets.map((target, i) => {
        const at = `notifications.${i}`;
        const shown = [`${at}.url`, `${at}.to`, `${at}.on`, `${at}.slower_than_seconds`];
        const other = Object.keys(errors).find(
          k => (k === at || k.startsWith(`${at}.`)) && !shown.includes(k)
        );
        return (
          <div className="jp-sched-notification" key={i} data-notification={i}>
            {target.kind === 'webhook' ? (
              <Field label={_('Webhook URL')} field={`${at}.url`} error={errors[`${at}.url`]}>
                <span className="jp-sched-inline">
                  <input
                    className="jp-mod-styled"
                    name={`${at}.url`}
                    placeholder="https://hooks.example.org/…"
                    value={target.url}
                    onChange={e => set(i, { url: e.target.value }, ['url'])}
                  />
                  <select
                    className="jp-mod-styled"
                    name={`${at}.format`}
                    aria-label={_('Message format')}
                    value={target.format}
                    onChange={e =>
                      set(i, { format: e.target.value as NotificationForm['format'] }, ['format'])
                    }
                  >
                    <option value="json">JSON</option>
                    <option value="slack">Slack</option>
                    <option value="teams">Teams</option>
                  </select>
                </span>
              </Field>
            ) : (
              <Field
                label={_('Email to')}
                field={`${at}.to`}
                error={errors[`${at}.to`]}
                hint={_('Separated by commas or spaces.')}
              >
                <input
                  className="jp-mod-styled"
                  name={`${at}.to`}
                  placeholder="ops@example.org"
                  value={target.to}
                  onChange={e => set(i, { to: e.target.value }, ['to'])}
                />
              </Field>
            )}
            <Field label={_('When')} field={`${at}.on`} error={errors[`${at}.on`]}>
              <span className="jp-sched-inline">
                {NOTIFY_ON.map(on => (
                  <label className="jp-sched-check" key={on}>
                    <input
                      type="checkbox"
                      name={`${at}.on`}
                      value={on}
                      checked={target.on.includes(on)}
                      onChange={e =>
                        set(
                          i,
                          {
                            on: e.target.checked
                              ? NOTIFY_ON.filter(o => o === on || target.on.includes(o))
                              : target.on.filter(o => o !== on)
                          },
                          ['on', 'slower_than_seconds']
                        )
                      }
                    />{' '}
                    {onLabels[on]}
                  </label>
                ))}
              </span>
            </Field>
            {target.on.includes('slow') && (
              <Field
                label={_('Slow after')}
                field={`${at}.slower_than_seconds`}
                error={errors[`${at}.slower_than_seconds`]}
              >
                <span className="jp-sched-inline">
                  <input
                    className="jp-mod-styled"
                    name={`${at}.slower_than_seconds`}
                    inputMode="numeric"
                    value={target.slowerThan}
                    onChange={e => set(i, { slowerThan: e.target.value }, ['slower_than_seconds'])}
                  />{' '}
                  {_('seconds')}
                </span>
              </Field>
            )}
            {other && (
              <div className="jp-sched-error" role="alert" data-error-for={other}>
                {errors[other]}
              </div>
            )}
            <button
              type="button"
              className="jp-mod-styled jp-sched-button"
              data-action="remove-notification"
              onClick={() => remove(i)}
            >
              {_('Remove')}
            </button>
          </div>
        );
      })}
      <div className="jp-sched-actions">
        <button
          type="button"
          className="jp-mod-styled jp-sched-button"
          data-action="add-webhook-target"
          onClick={() => onChange([...targets, newNotificationForm('webhook')], [])}
        >
          {_('Add webhook')}
        </button>
        <button
          type="button"
          className="jp-mod-styled jp-sched-button"
          data-action="add-email-target"
          onClick={() => onChange([...targets, newNotificationForm('email')], [])}
        >
          {_('Add email')}
        </button>
      </div>
    </div>
  );
}

function ParameterInput(props: {
  param: NotebookParameter;
  text: string;
  error?: string;
  onChange: (text: string) => void;
  _: Gettext;
}): JSX.Element {
  const { param, text, error, onChange, _ } = props;
  const input = parameterInput(param.type);
  const label = `${param.name} (${param.type})`;
  const hint = (
    <>
      {param.help && <span>{param.help} · </span>}
      {_('default')} <code>{parameterText(param.type, param.default)}</code>
    </>
  );
  let control: JSX.Element;
  const common = { name: `param-${param.name}`, 'data-param': param.name };
  if (input === 'boolean') {
    control = (
      <select
        className="jp-mod-styled"
        {...common}
        value={text}
        onChange={e => onChange(e.target.value)}
      >
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  } else if (input === 'json') {
    control = (
      <textarea
        className="jp-mod-styled jp-sched-json"
        {...common}
        spellCheck={false}
        rows={Math.min(6, Math.max(1, text.split('\n').length))}
        value={text}
        onChange={e => onChange(e.target.value)}
      />
    );
  } else {
    control = (
      <input
        className="jp-mod-styled"
        {...common}
        type={input === 'text' ? 'text' : 'text'}
        inputMode={input === 'integer' ? 'numeric' : input === 'number' ? 'decimal' : undefined}
        value={text}
        onChange={e => onChange(e.target.value)}
      />
    );
  }
  return (
    <Field label={label} field={`parameters.${param.name}`} error={error} hint={hint}>
      {control}
    </Field>
  );
}

function TriggerEditor(props: {
  editor: JobEditor;
  state: EditorState;
  editing: boolean;
  jobs: { id: string; name: string }[];
  _: Gettext;
}): JSX.Element {
  const { editor, state, editing, jobs, _ } = props;
  const trigger = state.form.trigger;
  const errors = state.errors;
  const kinds: [TriggerForm['kind'], string][] = [
    ...(editing ? [] : ([['now', _('Run now')]] as [TriggerForm['kind'], string][])),
    ['once', _('Once at')],
    ['interval', _('Every')],
    ['cron', _('Cron')],
    ['after', _('After a job')],
    ['event', _('On event')],
    ['manual', _('Only by hand')]
  ];
  const zones = React.useMemo(timezones, []);
  return (
    <fieldset className="jp-sched-fieldset" data-section="trigger">
      <legend>{_('When')}</legend>
      <div className="jp-sched-segmented" role="radiogroup" aria-label={_('Trigger')}>
        {kinds.map(([kind, label]) => (
          <label
            key={kind}
            className={`jp-sched-segment${trigger.kind === kind ? ' jp-mod-active' : ''}`}
          >
            <input
              type="radio"
              name="trigger-kind"
              value={kind}
              checked={trigger.kind === kind}
              onChange={() => editor.setTrigger({ kind })}
            />
            {label}
          </label>
        ))}
      </div>
      {trigger.kind === 'now' && (
        <div className="jp-sched-muted">
          {_('Runs once as soon as you create it; run it again from the job’s page.')}
        </div>
      )}
      {trigger.kind === 'manual' && (
        <div className="jp-sched-muted">
          {_('Never runs on its own: use Run now on the job’s page.')}
        </div>
      )}
      {trigger.kind === 'once' && (
        <Field
          label={_('At (your browser’s time)')}
          field="trigger.at"
          error={errors['trigger.at']}
        >
          <input
            className="jp-mod-styled"
            type="datetime-local"
            name="at"
            value={trigger.at}
            onChange={e => editor.setTrigger({ at: e.target.value })}
          />
        </Field>
      )}
      {trigger.kind === 'interval' && (
        <Field
          label={_('Every')}
          field="trigger.every_seconds"
          error={errors['trigger.every_seconds']}
        >
          <span className="jp-sched-inline">
            <input
              className="jp-mod-styled jp-sched-num"
              type="number"
              name="every"
              min={1}
              value={trigger.every}
              onChange={e => editor.setTrigger({ every: e.target.value })}
            />
            <select
              className="jp-mod-styled"
              name="unit"
              value={trigger.unit}
              onChange={e => editor.setTrigger({ unit: e.target.value as TriggerForm['unit'] })}
            >
              <option value="seconds">{_('seconds')}</option>
              <option value="minutes">{_('minutes')}</option>
              <option value="hours">{_('hours')}</option>
              <option value="days">{_('days')}</option>
            </select>
          </span>
        </Field>
      )}
      {trigger.kind === 'cron' && (
        <>
          <Field
            label={_('Cron expression')}
            field="trigger.cron"
            error={errors['trigger.cron'] ?? errors.trigger}
            hint={_('minute hour day-of-month month day-of-week, such as 0 6 * * 1-5')}
          >
            <span className="jp-sched-inline">
              <input
                className="jp-mod-styled jp-sched-cron"
                name="cron"
                spellCheck={false}
                value={trigger.cron}
                onChange={e => editor.setTrigger({ cron: e.target.value })}
              />
              <select
                className="jp-mod-styled"
                name="cron-preset"
                aria-label={_('Presets')}
                value=""
                onChange={e => e.target.value && editor.setTrigger({ cron: e.target.value })}
              >
                <option value="">{_('Presets…')}</option>
                {cronPresets(_).map(p => (
                  <option key={p.cron} value={p.cron}>
                    {p.label}
                  </option>
                ))}
              </select>
            </span>
          </Field>
          <Field label={_('Timezone')} field="trigger.timezone" error={errors['trigger.timezone']}>
            <input
              className="jp-mod-styled"
              name="timezone"
              list="jp-sched-timezones"
              value={trigger.timezone}
              onChange={e => editor.setTrigger({ timezone: e.target.value })}
            />
            <datalist id="jp-sched-timezones">
              {zones.map(z => (
                <option key={z} value={z} />
              ))}
            </datalist>
          </Field>
        </>
      )}
      {trigger.kind === 'event' && (
        <Field
          label={_('Event name')}
          field="trigger.event"
          error={errors['trigger.event']}
          hint={_('Runs each time the event is posted to sched/api/events/<name>.')}
        >
          <input
            className="jp-mod-styled"
            name="event"
            placeholder="sales.loaded"
            value={trigger.event}
            onChange={e => editor.setTrigger({ event: e.target.value })}
          />
        </Field>
      )}
      {trigger.kind === 'after' && (
        <>
          <Field label={_('After these jobs')} field="trigger.jobs" error={errors['trigger.jobs']}>
            {jobs.length ? (
              <span className="jp-sched-job-picks">
                {jobs.map(job => (
                  <label key={job.id} className="jp-sched-check">
                    <input
                      type="checkbox"
                      name="after-job"
                      value={job.id}
                      checked={trigger.afterJobs.includes(job.id)}
                      onChange={e =>
                        editor.setTrigger({
                          afterJobs: e.target.checked
                            ? [...trigger.afterJobs, job.id]
                            : trigger.afterJobs.filter(id => id !== job.id)
                        })
                      }
                    />{' '}
                    {job.name}
                  </label>
                ))}
              </span>
            ) : (
              <span className="jp-sched-muted">{_('There is no other job to wait for yet.')}</span>
            )}
          </Field>
          <Field label={_('When they')} field="trigger.condition">
            <span className="jp-sched-inline">
              <select
                className="jp-mod-styled"
                name="condition"
                value={trigger.condition}
                onChange={e =>
                  editor.setTrigger({ condition: e.target.value as TriggerForm['condition'] })
                }
              >
                <option value="success">{_('succeed')}</option>
                <option value="failure">{_('fail')}</option>
                <option value="completion">{_('end, whatever the outcome')}</option>
              </select>
              <label className="jp-sched-check">
                <input
                  type="checkbox"
                  name="pass-results"
                  checked={trigger.passResults}
                  onChange={e => editor.setTrigger({ passResults: e.target.checked })}
                />{' '}
                {_('pass their results to the notebook')}
              </label>
            </span>
          </Field>
        </>
      )}
      {trigger.kind !== 'cron' && errors.trigger && (
        <div className="jp-sched-error">{errors.trigger}</div>
      )}
      {(trigger.kind === 'cron' || trigger.kind === 'interval' || trigger.kind === 'once') && (
        <div className="jp-sched-preview" data-preview aria-live="polite">
          {state.preview ? (
            <>
              <div className="jp-sched-preview-description">{state.preview.description}</div>
              {state.preview.next.length ? (
                <ol className="jp-sched-preview-next">
                  {state.preview.next.map(t => (
                    <li key={t}>{formatTime(t)}</li>
                  ))}
                </ol>
              ) : (
                <div className="jp-sched-muted">{_('It will not fire again.')}</div>
              )}
            </>
          ) : state.previewPending ? (
            <span className="jp-sched-muted">{_('Computing the next fire times…')}</span>
          ) : null}
          {state.previewPending && state.preview && (
            <span className="jp-sched-muted jp-sched-stale" />
          )}
        </div>
      )}
    </fieldset>
  );
}
