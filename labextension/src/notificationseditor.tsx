/** The notification targets of the dialog's Advanced section: webhooks and email addresses. */
import * as React from 'react';

import { Field } from './components';
import type { Gettext } from './i18n';
import { ReportOptions } from './reportoptions';
import { NotificationForm, newNotificationForm } from './validation';

const NOTIFY_ON: NotificationForm['on'] = ['failure', 'success', 'slow'];

/** Reports a change of the targets, with the error fields the change makes stale. */
type OnTargetsChange = (targets: NotificationForm[], touched: string[]) => void;

export function NotificationsEditor(props: {
  targets: NotificationForm[];
  errors: Record<string, string>;
  onChange: OnTargetsChange;
  _: Gettext;
}): JSX.Element {
  const { targets, errors, onChange, _ } = props;
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
      {targets.map((target, i) => (
        <TargetEditor
          key={i}
          index={i}
          target={target}
          errors={errors}
          set={(changes, keys) => set(i, changes, keys)}
          remove={() => remove(i)}
          _={_}
        />
      ))}
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

/** What one target's editor shows and how it reports changes. */
interface TargetProps {
  index: number;
  target: NotificationForm;
  errors: Record<string, string>;
  /** Change the target; `keys` are its fields whose errors the change makes stale. */
  set: (changes: Partial<NotificationForm>, keys: string[]) => void;
  _: Gettext;
}

function TargetEditor(props: TargetProps & { remove: () => void }): JSX.Element {
  const { index, target, errors, remove, _ } = props;
  const at = `notifications.${index}`;
  const shown = [`${at}.url`, `${at}.to`, `${at}.on`, `${at}.slower_than_seconds`];
  // A server error on a part of the target that has no field of its own.
  const other = Object.keys(errors).find(
    k => (k === at || k.startsWith(`${at}.`)) && !shown.includes(k)
  );
  return (
    <div className="jp-sched-notification" data-notification={index}>
      {target.kind === 'webhook' ? <WebhookFields {...props} /> : <EmailField {...props} />}
      <WhenFields {...props} />
      {target.kind === 'email' && <ReportOptions at={at} target={target} set={props.set} _={_} />}
      {other && (
        <div className="jp-sched-error" role="alert" data-error-for={other}>
          {errors[other]}
        </div>
      )}
      <button
        type="button"
        className="jp-mod-styled jp-sched-button"
        data-action="remove-notification"
        onClick={remove}
      >
        {_('Remove')}
      </button>
    </div>
  );
}

function WebhookFields({ index, target, errors, set, _ }: TargetProps): JSX.Element {
  const at = `notifications.${index}`;
  return (
    <Field label={_('Webhook URL')} field={`${at}.url`} error={errors[`${at}.url`]}>
      <span className="jp-sched-inline">
        <input
          className="jp-mod-styled"
          name={`${at}.url`}
          placeholder="https://hooks.example.org/…"
          value={target.url}
          onChange={e => set({ url: e.target.value }, ['url'])}
        />
        <select
          className="jp-mod-styled"
          name={`${at}.format`}
          aria-label={_('Message format')}
          value={target.format}
          onChange={e => set({ format: e.target.value as NotificationForm['format'] }, ['format'])}
        >
          <option value="json">JSON</option>
          <option value="slack">Slack</option>
          <option value="teams">Teams</option>
        </select>
      </span>
    </Field>
  );
}

function EmailField({ index, target, errors, set, _ }: TargetProps): JSX.Element {
  const at = `notifications.${index}`;
  return (
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
        onChange={e => set({ to: e.target.value }, ['to'])}
      />
    </Field>
  );
}

/** When to notify (failure, success, slow) and, for slow runs, after how long. */
function WhenFields({ index, target, errors, set, _ }: TargetProps): JSX.Element {
  const at = `notifications.${index}`;
  const onLabels: Record<string, string> = {
    failure: _('on failure'),
    success: _('on success'),
    slow: _('when slow')
  };
  return (
    <>
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
              inputMode="decimal"
              value={target.slowerThan}
              onChange={e => set({ slowerThan: e.target.value }, ['slower_than_seconds'])}
            />{' '}
            {_('seconds')}
          </span>
        </Field>
      )}
    </>
  );
}
