/** Numbers and times in words. Pure. */
import type { JobStatus, Run } from './api';
import type { RunStatus } from './statuses';
import { Gettext, identity } from './i18n';

/** "0.8 s", "42 s", "3 min 5 s", "2 h 10 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return '—';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(1)} s`;
  }
  if (seconds < 60) {
    return `${Math.round(seconds)} s`;
  }
  const s = Math.round(seconds);
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** "in 5 min", "2 h ago", "just now", relative to `now` (ms). */
export function formatRelative(
  iso: string | null | undefined,
  now: number = Date.now(),
  _: Gettext = identity
): string {
  if (!iso) {
    return '—';
  }
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) {
    return iso;
  }
  const delta = Math.round((t - now) / 1000);
  const abs = Math.abs(delta);
  if (abs < 5) {
    return _('just now');
  }
  let amount: string;
  if (abs < 60) {
    amount = `${abs} s`;
  } else if (abs < 3600) {
    amount = `${Math.round(abs / 60)} min`;
  } else if (abs < 86400) {
    amount = `${Math.round(abs / 3600)} h`;
  } else {
    amount = `${Math.round(abs / 86400)} d`;
  }
  return delta > 0 ? _('in %1', amount) : _('%1 ago', amount);
}

/** An ISO time as local date and time, to the second. */
export function formatTime(iso: string | null | undefined, locale?: string): string {
  if (!iso) {
    return '—';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return date.toLocaleString(locale, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

/** "83%" or "—". */
export function formatRate(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '—' : `${Math.round(rate * 100)}%`;
}

/** A run status in words. */
export function statusLabel(status: RunStatus, _: Gettext = identity): string {
  const labels: Record<RunStatus, string> = {
    queued: _('queued'),
    running: _('running'),
    succeeded: _('succeeded'),
    failed: _('failed'),
    timed_out: _('timed out'),
    cancelled: _('cancelled'),
    lost: _('lost'),
    skipped: _('skipped')
  };
  return labels[status] ?? status;
}

/** A job status in words (`error`: the scheduler set the job aside, see its `error`). */
export function jobStatusLabel(status: JobStatus, _: Gettext = identity): string {
  const labels: Record<JobStatus, string> = {
    active: _('active'),
    paused: _('paused'),
    error: _('error')
  };
  return labels[status] ?? status;
}

/** A run trigger in words. */
export function runTriggerLabel(trigger: Run['trigger'], _: Gettext = identity): string {
  const labels: Record<Run['trigger'], string> = {
    schedule: _('schedule'),
    manual: _('run now'),
    retry: _('retry'),
    dependency: _('after another job'),
    event: _('event'),
    webhook: _('webhook'),
    backfill: _('backfill')
  };
  return labels[trigger] ?? trigger;
}

/** "cell 3 of 7" while a run runs. */
export function formatProgress(run: Run, _: Gettext = identity): string {
  const { done, total } = run.progress;
  return total
    ? _('cell %1 of %2', Math.min(done + (run.status === 'running' ? 1 : 0), total), total)
    : '';
}

/** The success rate of a list of finished runs (skipped ones do not count). */
export function successRate(runs: Run[]): number | null {
  const done = runs.filter(
    r => r.status !== 'skipped' && r.status !== 'queued' && r.status !== 'running'
  );
  return done.length ? done.filter(r => r.status === 'succeeded').length / done.length : null;
}
