import { describe, expect, it } from 'vitest';

import type { Run } from '../src/api';
import {
  formatDuration,
  formatProgress,
  formatRate,
  formatRelative,
  jobStatusLabel,
  statusLabel,
  successRate
} from '../src/format';

const run = (status: Run['status'], done = 0, total = 0): Run => ({
  id: status,
  job_id: 'j',
  notebook: 'n.ipynb',
  status,
  trigger: 'manual',
  attempt: 1,
  retry_of: null,
  scheduled_for: null,
  queued_at: '2030-01-01T00:00:00Z',
  started_at: null,
  finished_at: null,
  duration_seconds: null,
  parameters: {},
  progress: { done, total },
  error: null,
  worker_id: null,
  output_formats: ['ipynb']
});

describe('format', () => {
  it('durations', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(0.84)).toBe('0.8 s');
    expect(formatDuration(42.4)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min 5 s');
    expect(formatDuration(7800)).toBe('2 h 10 min');
  });

  it('relative times', () => {
    const now = Date.parse('2030-01-01T12:00:00Z');
    expect(formatRelative('2030-01-01T12:00:02Z', now)).toBe('just now');
    expect(formatRelative('2030-01-01T12:05:00Z', now)).toBe('in 5 min');
    expect(formatRelative('2030-01-01T10:00:00Z', now)).toBe('2 h ago');
    expect(formatRelative(null, now)).toBe('—');
  });

  it('rates, statuses and progress', () => {
    expect(formatRate(null)).toBe('—');
    expect(formatRate(0.834)).toBe('83%');
    expect(statusLabel('timed_out')).toBe('timed out');
    expect(formatProgress(run('running', 2, 7))).toBe('cell 3 of 7');
    expect(formatProgress(run('succeeded', 7, 7))).toBe('cell 7 of 7');
    expect(formatProgress(run('queued'))).toBe('');
  });

  it('job statuses, including a job the scheduler set aside', () => {
    expect(jobStatusLabel('active')).toBe('active');
    expect(jobStatusLabel('paused')).toBe('paused');
    expect(jobStatusLabel('error')).toBe('error');
    const french = (text: string) => ({ error: 'erreur' })[text] ?? text;
    expect(jobStatusLabel('error', french)).toBe('erreur');
  });

  it('success rate over finished runs', () => {
    expect(successRate([])).toBeNull();
    expect(successRate([run('succeeded'), run('failed'), run('running'), run('skipped')])).toBe(
      0.5
    );
  });
});
