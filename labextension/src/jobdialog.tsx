/**
 * The create / edit job dialog: name, notebook, a parameters form built from the
 * notebook's parameters cell, the trigger editor with the server's preview, and the
 * advanced settings. It stays open, with everything typed, when the server refuses.
 */
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { AdvancedSettings } from './advanced';
import {
  Job,
  NotebookParameter,
  OutputFormat,
  Preview,
  Run,
  SchedAPI,
  asApiError,
  formField
} from './api';
import { Field } from './components';
import type { Gettext } from './i18n';
import { ParametersForm } from './parametersform';
import { emptySweepForm, formToSweepJob, sweepToForm } from './sweep';
import { SweepEditor } from './sweepeditor';
import { TriggerEditor } from './triggereditor';
import { TriggerForm, defaultTriggerForm, formToTrigger, triggerToForm } from './triggers';
import {
  JobForm,
  errorField,
  notificationsToForm,
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

/** A number of the API as the form shows it ('' for none). */
const numberText = (n: number | null | undefined): string =>
  n !== null && n !== undefined ? String(n) : '';

/** The form of an existing job, with its trigger in the editor's terms. */
function jobToForm(job: Job, timezone: string): JobForm {
  return {
    name: job.name,
    notebook: job.notebook,
    parameters: {},
    trigger: triggerToForm(job.trigger, timezone),
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
    retentionDays: numberText(job.retention_days),
    retentionRuns: numberText(job.retention_runs),
    sweep: sweepToForm(job.sweep, job.max_parallel)
  };
}

function initialForm(options: JobDialogOptions): JobForm {
  const tz = options.timezone || browserTimezone();
  if (options.job) {
    return jobToForm(options.job, tz);
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
    retentionRuns: '',
    sweep: emptySweepForm()
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
    const checked = formToSweepJob(this.state.form, this.state.declared, _);
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
      this.state = {
        ...this.state,
        declared: [],
        loadingParameters: false,
        errors: { ...this.state.errors, notebook: asApiError(error).message }
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
      const e = asApiError(error);
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
    const e = asApiError(error);
    const message =
      e.status === 409
        ? this._('%1 Reopen the job to see its current settings.', e.message)
        : e.unreachable
          ? this._('Cannot reach the server: nothing was saved. Try again.')
          : e.message;
    this.setErrors({ [errorField(e.field, this.state.form, this.state.declared)]: message });
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

/** The dialog's body: name, notebook, parameters, trigger and the advanced settings. */
function EditorView(props: {
  editor: JobEditor;
  state: EditorState;
  options: JobDialogOptions;
  _: Gettext;
}): JSX.Element {
  const { editor, state, options, _ } = props;
  const { form, errors } = state;
  return (
    <div className="jp-sched-form">
      {errors[''] && (
        <div className="jp-sched-banner jp-sched-banner-error jp-sched-form-error" role="alert">
          {errors['']}
        </div>
      )}
      <NameAndNotebook editor={editor} form={form} errors={errors} _={_} />
      <ParametersForm
        declared={state.declared}
        texts={form.parameters}
        errors={errors}
        loading={state.loadingParameters}
        hasNotebook={!!form.notebook.trim()}
        onChange={(name, text) => editor.setParameter(name, text)}
        _={_}
      />
      {form.sweep && (
        <SweepEditor
          sweep={form.sweep}
          declared={state.declared}
          errors={errors}
          onChange={(sweep, touched) => editor.change({ sweep }, touched)}
          _={_}
        />
      )}
      <TriggerEditor
        trigger={form.trigger}
        errors={errors}
        set={changes => editor.setTrigger(changes)}
        editing={!!options.job}
        jobs={options.jobs.filter(j => j.id !== options.job?.id)}
        preview={state.preview}
        previewPending={state.previewPending}
        _={_}
      />
      <AdvancedSettings
        form={form}
        errors={errors}
        change={(changes, touched) => editor.change(changes, touched)}
        kernelNames={options.kernelNames}
        _={_}
      />
    </div>
  );
}

function NameAndNotebook(props: {
  editor: JobEditor;
  form: JobForm;
  errors: Record<string, string>;
  _: Gettext;
}): JSX.Element {
  const { editor, form, errors, _ } = props;
  return (
    <>
      <Field label={_('Name')} field="name" error={errors.name}>
        <input
          className="jp-mod-styled"
          name="name"
          value={form.name}
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
    </>
  );
}
