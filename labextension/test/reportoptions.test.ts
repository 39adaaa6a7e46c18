import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import type { EmailTarget } from '../src/api';
import { identity } from '../src/i18n';
import { ReportOptions } from '../src/reportoptions';
import {
  NotificationForm,
  changeReport,
  formToNotifications,
  newNotificationForm,
  notificationsToForm
} from '../src/validation';

const email = (changes: Partial<NotificationForm> = {}): NotificationForm => ({
  ...newNotificationForm('email'),
  to: 'ops@example.org',
  ...changes
});

function markup(target: NotificationForm): string {
  return renderToStaticMarkup(
    React.createElement(ReportOptions, {
      at: 'notifications.1',
      target,
      set: () => undefined,
      _: identity
    })
  );
}

/** The `name` (and `value`) of each checkbox in `html`, with whether it is checked. */
function checkboxes(html: string): Record<string, boolean> {
  const boxes: Record<string, boolean> = {};
  for (const input of html.match(/<input[^>]*>/g) ?? []) {
    const name = /name="([^"]+)"/.exec(input)?.[1] ?? '';
    const value = /value="([^"]+)"/.exec(input)?.[1];
    boxes[value ? `${name}=${value}` : name] = /checked=""/.test(input);
  }
  return boxes;
}

describe('email report options', () => {
  it('show only the switch while the report is off', () => {
    expect(checkboxes(markup(email()))).toEqual({ 'notifications.1.report': false });
  });

  it('show hide-code and the attachments once the report is on', () => {
    const html = markup(email({ report: true, hideInput: true, attach: ['html'] }));
    expect(checkboxes(html)).toEqual({
      'notifications.1.report': true,
      'notifications.1.report.hide_input': true,
      'notifications.1.report.attach=ipynb': false,
      'notifications.1.report.attach=html': true
    });
    expect(html).toContain('hide the code');
    expect(html).toContain('data-field="notifications.1.report"');
  });

  it('change one option at a time, attachments in the server order', () => {
    const form = email({ report: true });
    expect(changeReport(form, { hideInput: true })).toEqual({ hideInput: true });
    const withHtml = { ...form, ...changeReport(form, { attach: 'html', attached: true }) };
    const both = { ...withHtml, ...changeReport(withHtml, { attach: 'ipynb', attached: true }) };
    expect(both.attach).toEqual(['ipynb', 'html']);
    expect(changeReport(both, { attach: 'ipynb', attached: false })).toEqual({ attach: ['html'] });
    expect(changeReport(both, { report: false })).toEqual({ report: false });
  });

  it('round-trip between the job field and the form, keeping the size bound', () => {
    const target: EmailTarget = {
      kind: 'email',
      to: ['ops@example.org'],
      on: ['success', 'failure'],
      slower_than_seconds: null,
      report: { hide_input: true, attach: ['html', 'ipynb'], max_bytes: 500_000 }
    };
    const [form] = notificationsToForm([target]);
    expect(form).toMatchObject({
      report: true,
      hideInput: true,
      attach: ['ipynb', 'html'],
      reportMaxBytes: 500_000
    });
    const errors = {};
    expect(formToNotifications([form], errors)).toEqual([
      { ...target, report: { hide_input: true, attach: ['ipynb', 'html'], max_bytes: 500_000 } }
    ]);
    expect(errors).toEqual({});
  });

  it('send no report when it is off, whatever options were ticked before', () => {
    const form = email({ report: false, hideInput: true, attach: ['ipynb'] });
    const [sent] = formToNotifications([form], {});
    expect(sent).toEqual({
      kind: 'email',
      to: ['ops@example.org'],
      on: ['failure'],
      slower_than_seconds: null
    });
    const [on] = formToNotifications([{ ...form, report: true }], {});
    expect(on).toMatchObject({ report: { hide_input: true, attach: ['ipynb'] } });
    expect(on.kind === 'email' && on.report && 'max_bytes' in on.report).toBe(false);
  });
});
