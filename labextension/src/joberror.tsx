/**
 * Why the scheduler set a job aside (status `error`, e.g. a trigger that fires no more):
 * the line under its row in the panel and the banner of its view.
 */
import * as React from 'react';

import type { Job } from './api';
import type { Gettext } from './i18n';

type JobState = Pick<Job, 'status' | 'error'>;

/** The panel row's line with the job's error; nothing unless the job was set aside. */
export function JobErrorLine(props: { job: JobState }): JSX.Element | null {
  const { job } = props;
  if (job.status !== 'error' || !job.error) {
    return null;
  }
  return (
    <div className="jp-sched-row-sub jp-sched-row-error" data-field="job-error" title={job.error}>
      {job.error}
    </div>
  );
}

/** The job view's banner: why the job was set aside and how to schedule it again. */
export function SetAsideBanner(props: { job: JobState; _: Gettext }): JSX.Element | null {
  const { job, _ } = props;
  if (job.status !== 'error') {
    return null;
  }
  return (
    <div className="jp-sched-banner jp-sched-banner-error" role="alert" data-field="job-error">
      {_(
        'Set aside by the scheduler: %1. Resume the job or change its trigger to schedule it again.',
        job.error ?? _('no reason given')
      )}
    </div>
  );
}
