/**
 * The email target's report options in the dialog: send the rendered report in the body,
 * hide the code, attach the notebook or its HTML. React only (no JupyterLab), so that its
 * markup is tested without a browser.
 */
import * as React from 'react';

import type { ReportAttachment } from './api';
import type { Gettext } from './i18n';
import { NotificationForm, REPORT_ATTACHMENTS, changeReport } from './validation';

export function ReportOptions(props: {
  /** The target's field prefix, e.g. "notifications.0". */
  at: string;
  target: NotificationForm;
  /** Change the target; `keys` are its fields whose errors the change makes stale. */
  set: (changes: Partial<NotificationForm>, keys: string[]) => void;
  _: Gettext;
}): JSX.Element {
  const { at, target, set, _ } = props;
  const attachLabels: Record<ReportAttachment, string> = {
    ipynb: _('attach the notebook'),
    html: _('attach the HTML (when the job makes HTML)')
  };
  return (
    <div className="jp-sched-field jp-sched-report" data-field={`${at}.report`}>
      <span className="jp-sched-label-text">{_('Report')}</span>
      <label className="jp-sched-check">
        <input
          type="checkbox"
          name={`${at}.report`}
          checked={target.report}
          onChange={e => set(changeReport(target, { report: e.target.checked }), ['report'])}
        />{' '}
        {_('send the rendered notebook in the email')}
      </label>
      {target.report && (
        <span className="jp-sched-inline jp-sched-report-options">
          <label className="jp-sched-check">
            <input
              type="checkbox"
              name={`${at}.report.hide_input`}
              checked={target.hideInput}
              onChange={e =>
                set(changeReport(target, { hideInput: e.target.checked }), ['report.hide_input'])
              }
            />{' '}
            {_('hide the code')}
          </label>
          {REPORT_ATTACHMENTS.map(attachment => (
            <label className="jp-sched-check" key={attachment}>
              <input
                type="checkbox"
                name={`${at}.report.attach`}
                value={attachment}
                checked={target.attach.includes(attachment)}
                onChange={e =>
                  set(changeReport(target, { attach: attachment, attached: e.target.checked }), [
                    'report.attach'
                  ])
                }
              />{' '}
              {attachLabels[attachment]}
            </label>
          ))}
        </span>
      )}
    </div>
  );
}
