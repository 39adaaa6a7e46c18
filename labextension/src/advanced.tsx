/**
 * The dialog's Advanced section: kernel, retries, timeout, overlap and missed fires,
 * outputs, tags, retention and notifications.
 */
import * as React from 'react';

import { Field } from './components';
import type { Gettext } from './i18n';
import { NotificationsEditor } from './notificationseditor';
import type { JobForm } from './validation';

/** The API fields the Advanced section shows errors of (it opens when one has an error). */
const ADVANCED_FIELDS = [
  'kernel',
  'retries',
  'timeout_seconds',
  'overlap',
  'misfire',
  'output_formats',
  'tags',
  'retention_days',
  'retention_runs'
];

/** Whether one of `errors` is shown in the Advanced section. */
export function hasAdvancedError(errors: Record<string, string>): boolean {
  return (
    ADVANCED_FIELDS.some(f => errors[f]) ||
    Object.keys(errors).some(f => f.startsWith('notifications'))
  );
}

/** What a part of the section shows and how it reports a change. */
interface SectionProps {
  form: JobForm;
  errors: Record<string, string>;
  /** Change the form; `touched` are the fields whose errors the change makes stale. */
  change: (changes: Partial<JobForm>, touched: string[]) => void;
  _: Gettext;
}

export function AdvancedSettings(props: SectionProps & { kernelNames: string[] }): JSX.Element {
  const { form, errors, change, _ } = props;
  return (
    <details className="jp-sched-advanced" open={hasAdvancedError(errors) || undefined}>
      <summary>
        {_('Advanced: kernel, retries, timeout, overlap, outputs, tags, retention, notifications')}
      </summary>
      <KernelField {...props} />
      <RetryFields {...props} />
      <PolicyFields {...props} />
      <OutputsAndTags {...props} />
      <RetentionFields {...props} />
      <NotificationsEditor
        targets={form.notifications ?? []}
        errors={errors}
        onChange={(notifications, touched) => change({ notifications }, touched)}
        _={_}
      />
    </details>
  );
}

function KernelField(props: SectionProps & { kernelNames: string[] }): JSX.Element {
  const { form, errors, change, kernelNames, _ } = props;
  const kernels = [...new Set([...kernelNames, ...(form.kernel ? [form.kernel] : [])])];
  return (
    <Field label={_('Kernel')} field="kernel" error={errors.kernel}>
      <select
        className="jp-mod-styled"
        name="kernel"
        value={form.kernel}
        onChange={e => change({ kernel: e.target.value }, ['kernel'])}
      >
        <option value="">{_('the notebook’s own kernel')}</option>
        {kernels.map(k => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
    </Field>
  );
}

function RetryFields({ form, errors, change, _ }: SectionProps): JSX.Element {
  return (
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
          onChange={e => change({ retries: e.target.value }, ['retries'])}
        />
        {_('delay')}
        <input
          className="jp-mod-styled jp-sched-num"
          name="retry_delay_seconds"
          type="number"
          min={0}
          value={form.retryDelay}
          aria-label={_('Retry delay in seconds')}
          onChange={e => change({ retryDelay: e.target.value }, ['retries'])}
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
          onChange={e => change({ retryBackoff: e.target.value }, ['retries'])}
        />
      </span>
    </Field>
  );
}

/** The timeout, and what happens to overlapping runs and missed fires. */
function PolicyFields({ form, errors, change, _ }: SectionProps): JSX.Element {
  return (
    <>
      <Field label={_('Timeout (seconds)')} field="timeout_seconds" error={errors.timeout_seconds}>
        <input
          className="jp-mod-styled jp-sched-num"
          name="timeout_seconds"
          type="number"
          min={1}
          placeholder={_('none')}
          value={form.timeout}
          onChange={e => change({ timeout: e.target.value }, ['timeout_seconds'])}
        />
      </Field>
      <Field label={_('When the previous run still runs')} field="overlap" error={errors.overlap}>
        <select
          className="jp-mod-styled"
          name="overlap"
          value={form.overlap}
          onChange={e => change({ overlap: e.target.value as JobForm['overlap'] }, ['overlap'])}
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
          onChange={e => change({ misfire: e.target.value as JobForm['misfire'] }, ['misfire'])}
        >
          <option value="run_once">{_('run once to catch up')}</option>
          <option value="skip">{_('skip them')}</option>
        </select>
      </Field>
    </>
  );
}

/** A checkbox that adds or removes one rendering of each run. */
function OutputCheck(props: {
  form: SectionProps['form'];
  change: SectionProps['change'];
  format: 'html' | 'pdf';
  label: string;
}): JSX.Element {
  const { form, change, format, label } = props;
  return (
    <label className="jp-sched-check">
      <input
        type="checkbox"
        name={`output_${format}`}
        checked={form.outputFormats.includes(format)}
        onChange={e =>
          change(
            {
              outputFormats: e.target.checked
                ? [...form.outputFormats.filter(f => f !== format), format]
                : form.outputFormats.filter(f => f !== format)
            },
            ['output_formats']
          )
        }
      />{' '}
      {label}
    </label>
  );
}

function OutputsAndTags({ form, errors, change, _ }: SectionProps): JSX.Element {
  return (
    <>
      <Field label={_('Outputs')} field="output_formats" error={errors.output_formats}>
        <span className="jp-sched-inline">
          <label className="jp-sched-check">
            <input type="checkbox" checked disabled /> {_('notebook (always)')}
          </label>
          <OutputCheck form={form} change={change} format="html" label="HTML" />
          <OutputCheck form={form} change={change} format="pdf" label="PDF" />
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
          onChange={e => change({ tags: e.target.value }, ['tags'])}
        />
      </Field>
    </>
  );
}

/** How long finished runs are kept (empty: the server's default). */
function RetentionFields({ form, errors, change, _ }: SectionProps): JSX.Element {
  return (
    <>
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
            inputMode="decimal"
            placeholder={_('days')}
            aria-label={_('Keep finished runs this many days')}
            value={form.retentionDays ?? ''}
            onChange={e => change({ retentionDays: e.target.value }, ['retention_days'])}
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
            onChange={e => change({ retentionRuns: e.target.value }, ['retention_runs'])}
          />{' '}
          {_('runs')}
        </span>
      </Field>
    </>
  );
}
