import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import type { Job } from '../src/api';
import { identity } from '../src/i18n';
import { JobErrorLine, SetAsideBanner } from '../src/joberror';

type JobState = Pick<Job, 'status' | 'error'>;

// What the ticker writes when it sets a job aside (jupyter_sched/firing.py `set_aside`).
const reason = 'the job cannot be fired: unknown timezone Mars/Olympus';
const setAside: JobState = { status: 'error', error: reason };

const line = (job: JobState): string =>
  renderToStaticMarkup(React.createElement(JobErrorLine, { job }));
const banner = (job: JobState): string =>
  renderToStaticMarkup(React.createElement(SetAsideBanner, { job, _: identity }));

describe('a job set aside by the ticker', () => {
  it('shows its error under its row in the panel', () => {
    const html = line(setAside);
    expect(html).toContain('data-field="job-error"');
    expect(html).toContain(`title="${reason}"`);
    expect(html).toContain(`>${reason}</div>`);
  });

  it('shows its error and the way back in its view', () => {
    const html = banner(setAside);
    expect(html).toContain('role="alert"');
    expect(html).toContain(
      `Set aside by the scheduler: ${reason}. Resume the job or change its trigger to schedule it again.`
    );
  });

  it('says so in its view even without a reason', () => {
    expect(banner({ status: 'error', error: null })).toContain(
      'Set aside by the scheduler: no reason given.'
    );
  });
});

describe('a job not set aside', () => {
  it('shows no error, in the panel or its view', () => {
    for (const status of ['active', 'paused'] as const) {
      expect(line({ status, error: null })).toBe('');
      expect(banner({ status, error: null })).toBe('');
    }
  });
});
