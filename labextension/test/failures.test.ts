import { describe, expect, it } from 'vitest';

import type { Run } from '../src/api';
import { FailureWatch } from '../src/failures';

const run = (id: string, status: Run['status'], finished_at: string | null = null): Run => ({
  id,
  job_id: 'j',
  notebook: 'n.ipynb',
  status,
  trigger: 'manual',
  attempt: 1,
  retry_of: null,
  scheduled_for: null,
  queued_at: '2026-01-01T00:00:00Z',
  started_at: null,
  finished_at,
  duration_seconds: null,
  error: null,
  output_formats: ['ipynb'],
  parameters: {},
  progress: { done: 0, total: 0 },
  worker_id: null
});

const LOAD = Date.parse('2026-01-01T10:00:00Z');

describe('FailureWatch', () => {
  it('says nothing of the runs already failed at load', () => {
    const watch = new FailureWatch();
    expect(watch.update([run('a', 'failed', '2026-01-01T09:00:00Z')], LOAD)).toEqual([]);
    expect(watch.update([run('a', 'failed', '2026-01-01T09:00:00Z')], LOAD + 2000)).toEqual([]);
  });

  it('tells of a queued or running run that failed, timed out or was lost, once', () => {
    const watch = new FailureWatch();
    watch.update([run('a', 'queued'), run('b', 'running'), run('c', 'running')], LOAD);
    const failed = watch.update(
      [run('a', 'failed'), run('b', 'timed_out'), run('c', 'lost')],
      LOAD + 2000
    );
    expect(failed.map(r => r.id)).toEqual(['a', 'b', 'c']);
    expect(watch.update([run('a', 'failed'), run('b', 'timed_out')], LOAD + 4000)).toEqual([]);
  });

  it('ignores runs that succeed or are cancelled or skipped', () => {
    const watch = new FailureWatch();
    watch.update([run('a', 'running'), run('b', 'running'), run('c', 'queued')], LOAD);
    expect(
      watch.update([run('a', 'succeeded'), run('b', 'cancelled'), run('c', 'skipped')], LOAD)
    ).toEqual([]);
  });

  it('tells of a new run that failed between two polls, after the load', () => {
    const watch = new FailureWatch();
    watch.update([], LOAD);
    const failed = watch.update(
      [run('new', 'failed', '2026-01-01T10:00:05Z'), run('old', 'failed', '2026-01-01T09:59:00Z')],
      LOAD + 6000
    );
    expect(failed.map(r => r.id)).toEqual(['new']);
  });

  it('remembers runs while the filters hide them', () => {
    const watch = new FailureWatch();
    watch.update([run('a', 'running')], LOAD);
    expect(watch.update([], LOAD + 2000)).toEqual([]);
    expect(watch.update([run('a', 'failed')], LOAD + 4000).map(r => r.id)).toEqual(['a']);
  });
});
