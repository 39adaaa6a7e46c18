/**
 * The dialog's "When" section: the trigger kinds, the fields of the kind chosen, and the
 * server's description and next fire times of what is typed (its `preview` endpoint).
 */
import * as React from 'react';

import type { Preview } from './api';
import { Field } from './components';
import { formatTime } from './format';
import type { Gettext } from './i18n';
import { TriggerForm, cronPresets } from './triggers';

/** What the trigger editor shows and how it reports a change. */
interface TriggerProps {
  trigger: TriggerForm;
  /** Errors by field ('trigger', 'trigger.cron'...). */
  errors: Record<string, string>;
  set: (changes: Partial<TriggerForm>) => void;
  _: Gettext;
}

export function TriggerEditor(
  props: TriggerProps & {
    /** Editing an existing job: "Run now" is no choice then. */
    editing: boolean;
    /** The jobs an `after` trigger can wait for. */
    jobs: { id: string; name: string }[];
    preview: Preview | null;
    previewPending: boolean;
  }
): JSX.Element {
  const { trigger, errors, _ } = props;
  return (
    <fieldset className="jp-sched-fieldset" data-section="trigger">
      <legend>{_('When')}</legend>
      <TriggerKinds {...props} />
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
      {trigger.kind === 'once' && <OnceField {...props} />}
      {trigger.kind === 'interval' && <IntervalFields {...props} />}
      {trigger.kind === 'cron' && <CronFields {...props} />}
      {trigger.kind === 'event' && <EventField {...props} />}
      {trigger.kind === 'after' && <AfterFields {...props} />}
      {trigger.kind !== 'cron' && errors.trigger && (
        <div className="jp-sched-error">{errors.trigger}</div>
      )}
      {(trigger.kind === 'cron' || trigger.kind === 'interval' || trigger.kind === 'once') && (
        <TriggerPreview preview={props.preview} pending={props.previewPending} _={_} />
      )}
    </fieldset>
  );
}

function TriggerKinds(props: TriggerProps & { editing: boolean }): JSX.Element {
  const { trigger, set, editing, _ } = props;
  const kinds: [TriggerForm['kind'], string][] = [
    ...(editing ? [] : ([['now', _('Run now')]] as [TriggerForm['kind'], string][])),
    ['once', _('Once at')],
    ['interval', _('Every')],
    ['cron', _('Cron')],
    ['after', _('After a job')],
    ['event', _('On event')],
    ['manual', _('Only by hand')]
  ];
  return (
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
            onChange={() => set({ kind })}
          />
          {label}
        </label>
      ))}
    </div>
  );
}

function OnceField({ trigger, errors, set, _ }: TriggerProps): JSX.Element {
  return (
    <Field label={_('At (your browser’s time)')} field="trigger.at" error={errors['trigger.at']}>
      <input
        className="jp-mod-styled"
        type="datetime-local"
        name="at"
        value={trigger.at}
        onChange={e => set({ at: e.target.value })}
      />
    </Field>
  );
}

function IntervalFields({ trigger, errors, set, _ }: TriggerProps): JSX.Element {
  return (
    <Field label={_('Every')} field="trigger.every_seconds" error={errors['trigger.every_seconds']}>
      <span className="jp-sched-inline">
        <input
          className="jp-mod-styled jp-sched-num"
          type="number"
          name="every"
          min={1}
          value={trigger.every}
          onChange={e => set({ every: e.target.value })}
        />
        <select
          className="jp-mod-styled"
          name="unit"
          value={trigger.unit}
          onChange={e => set({ unit: e.target.value as TriggerForm['unit'] })}
        >
          <option value="seconds">{_('seconds')}</option>
          <option value="minutes">{_('minutes')}</option>
          <option value="hours">{_('hours')}</option>
          <option value="days">{_('days')}</option>
        </select>
      </span>
    </Field>
  );
}

/** The IANA timezones the browser knows (for the timezone field's suggestions). */
function timezones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf(
      'timeZone'
    );
  } catch {
    return ['UTC'];
  }
}

function CronFields({ trigger, errors, set, _ }: TriggerProps): JSX.Element {
  const zones = React.useMemo(timezones, []);
  return (
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
            onChange={e => set({ cron: e.target.value })}
          />
          <select
            className="jp-mod-styled"
            name="cron-preset"
            aria-label={_('Presets')}
            value=""
            onChange={e => e.target.value && set({ cron: e.target.value })}
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
          onChange={e => set({ timezone: e.target.value })}
        />
        <datalist id="jp-sched-timezones">
          {zones.map(z => (
            <option key={z} value={z} />
          ))}
        </datalist>
      </Field>
    </>
  );
}

function EventField({ trigger, errors, set, _ }: TriggerProps): JSX.Element {
  return (
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
        onChange={e => set({ event: e.target.value })}
      />
    </Field>
  );
}

function AfterFields(props: TriggerProps & { jobs: { id: string; name: string }[] }): JSX.Element {
  const { trigger, errors, set, jobs, _ } = props;
  return (
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
                    set({
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
            onChange={e => set({ condition: e.target.value as TriggerForm['condition'] })}
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
              onChange={e => set({ passResults: e.target.checked })}
            />{' '}
            {_('pass their results to the notebook')}
          </label>
        </span>
      </Field>
    </>
  );
}

/** The server's words for the trigger typed, and its next fire times. */
function TriggerPreview(props: {
  preview: Preview | null;
  pending: boolean;
  _: Gettext;
}): JSX.Element {
  const { preview, pending, _ } = props;
  return (
    <div className="jp-sched-preview" data-preview aria-live="polite">
      {preview ? (
        <>
          <div className="jp-sched-preview-description">{preview.description}</div>
          {preview.next.length ? (
            <ol className="jp-sched-preview-next">
              {preview.next.map(t => (
                <li key={t}>{formatTime(t)}</li>
              ))}
            </ol>
          ) : (
            <div className="jp-sched-muted">{_('It will not fire again.')}</div>
          )}
        </>
      ) : pending ? (
        <span className="jp-sched-muted">{_('Computing the next fire times…')}</span>
      ) : null}
      {pending && preview && <span className="jp-sched-muted jp-sched-stale" />}
    </div>
  );
}
