/**
 * The state the panel and the detail views show: jobs and recent runs, polled from the
 * server every `interval` ms (every `followInterval` ms while a run is in flight), with the
 * connection's state for the "retrying…" banner.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  ApiError,
  Batch,
  Caller,
  Job,
  JobStats,
  JobStatus,
  Run,
  SchedAPI,
  asApiError
} from './api';
import { FailureWatch } from './failures';
import { Backoff, inFlight, MIN_INTERVAL } from './polling';
import type { RunStatus } from './statuses';

export interface Filters {
  jobStatus: JobStatus | '';
  runStatus: RunStatus | '';
  tag: string;
  /** An admin's switch: every user's jobs and runs instead of their own. */
  allUsers: boolean;
}

export class SchedModel {
  constructor(readonly api: SchedAPI) {}

  jobs: Job[] = [];
  runs: Run[] = [];
  /** The newest batches (sweeps, backfills) by id, with their progress. */
  batches = new Map<string, Batch>();
  filters: Filters = { jobStatus: '', runStatus: '', tag: '', allUsers: false };
  /** Who the server takes this user for (asked once); null until it answered. */
  caller: Caller | null = null;
  /** Set once the first answer arrived. */
  loaded = false;
  /** The last failure when the server did not answer, else null. */
  connectionError: ApiError | null = null;
  /** The last error that was not a lost connection (a bad filter, a 500). */
  error: ApiError | null = null;
  /** When the last answer arrived (ms). */
  updatedAt = 0;

  /** How often to ask the server when no run is in flight, in ms. */
  get interval(): number {
    return this._interval;
  }
  set interval(ms: number) {
    this._interval = Math.max(MIN_INTERVAL, ms);
    this.schedule(this.nextDelay());
  }

  /** How often to ask the server while a run is queued or running, in ms. */
  get followInterval(): number {
    return this._followInterval;
  }
  set followInterval(ms: number) {
    this._followInterval = Math.max(MIN_INTERVAL, ms);
    this.schedule(this.nextDelay());
  }

  /** True while one of the recent runs is queued or running. */
  get following(): boolean {
    return inFlight(this.runs.map(r => r.status));
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A run that was queued or running went failed, timed out or lost (seen by polling). */
  get runFailed(): ISignal<this, Run> {
    return this._runFailed;
  }

  setFilters(filters: Partial<Filters>): void {
    this.filters = { ...this.filters, ...filters };
    this._changed.emit();
    void this.refresh();
  }

  /** Whether the lists hold other users' jobs and runs, so rows name their owner. */
  get showsOwners(): boolean {
    return !!this.caller?.admin && this.filters.allUsers;
  }

  /** All tags of the jobs seen (for the tag filter). */
  get tags(): string[] {
    return [...this._tags].sort();
  }

  start(): void {
    if (!this._started) {
      this._started = true;
      void this.refresh();
    }
  }

  /** Ask the server now (and then every `interval` again). */
  async refresh(): Promise<void> {
    if (this._disposed) {
      return;
    }
    window.clearTimeout(this._timer);
    const ticket = ++this._ticket;
    const { jobStatus, runStatus, tag } = this.filters;
    try {
      this.caller ??= await this.api.whoAmI();
      // An admin's listings hold everyone's: their own only, unless they switched.
      const owner = this.caller.admin && !this.filters.allUsers ? this.caller.name : undefined;
      const [jobs, runs, batches] = await Promise.all([
        this.api.listJobs({ status: jobStatus || undefined, tag: tag || undefined, owner }),
        this.api.listRuns({ status: runStatus || undefined, limit: 50, owner }),
        this.api.listBatches({ limit: 20 })
      ]);
      if (ticket !== this._ticket) {
        return; // a newer request (other filters) is on its way
      }
      this.jobs = jobs.jobs;
      this.batches = new Map(batches.batches.map(b => [b.id, b]));
      const jobIds = new Set(this.jobs.map(j => j.id));
      // With a job filter, show the runs of the jobs shown.
      this.runs =
        jobStatus || tag ? runs.runs.filter(r => r.job_id && jobIds.has(r.job_id)) : runs.runs;
      for (const job of this.jobs) {
        job.tags.forEach(t => this._tags.add(t));
      }
      this._newlyFailed = this._failuresWatch.update(runs.runs);
      this.refreshStats();
      this.loaded = true;
      this.connectionError = null;
      this.error = null;
      this.updatedAt = Date.now();
      this._backoff.answered();
    } catch (error) {
      if (ticket !== this._ticket) {
        return;
      }
      const e = asApiError(error);
      if (e.unreachable) {
        this.connectionError = e;
        this._backoff.unreachable();
      } else {
        this.error = e;
      }
    }
    this._changed.emit();
    if (this._newlyFailed.length) {
      const failed = this._newlyFailed;
      this._newlyFailed = [];
      failed.forEach(run => this._runFailed.emit(run));
    }
    this.schedule(this.nextDelay());
  }

  /** The wait before the next request (backs off while the server is away). */
  private nextDelay(): number {
    return this._backoff.delay(
      { interval: this._interval, follow: this._followInterval },
      this.following
    );
  }

  /** Job id → name, of the jobs listed. */
  get jobNames(): Record<string, string> {
    return Object.fromEntries(this.jobs.map(j => [j.id, j.name]));
  }

  /** The job of a run, when it is known here. */
  job(id: string | null): Job | undefined {
    return id ? this.jobs.find(j => j.id === id) : undefined;
  }

  /** The statistics of a job, once fetched (again whenever its last run changes). */
  stats(jobId: string): JobStats | undefined {
    return this._stats.get(jobId)?.stats;
  }

  private refreshStats(): void {
    for (const job of this.jobs) {
      const key = job.last_run ? `${job.last_run.id}:${job.last_run.status}` : '';
      const cached = this._stats.get(job.id);
      if (cached && cached.key === key) {
        continue;
      }
      this._stats.set(job.id, { key, stats: cached?.stats });
      this.api.jobStats(job.id).then(
        stats => {
          this._stats.set(job.id, { key, stats });
          this._changed.emit();
        },
        () => this._stats.delete(job.id)
      );
    }
  }

  /** Runs of `jobId` among the recent runs. */
  runsOf(jobId: string): Run[] {
    return this.runs.filter(r => r.job_id === jobId);
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._timer);
    Signal.clearData(this);
  }

  private schedule(ms: number): void {
    window.clearTimeout(this._timer);
    if (this._started && !this._disposed) {
      this._timer = window.setTimeout(() => void this.refresh(), ms);
    }
  }

  private _changed = new Signal<this, void>(this);
  private _runFailed = new Signal<this, Run>(this);
  private _failuresWatch = new FailureWatch();
  private _newlyFailed: Run[] = [];
  private _interval = 2000;
  private _followInterval = 500;
  private _timer = 0;
  private _ticket = 0;
  private _backoff = new Backoff();
  private _started = false;
  private _disposed = false;
  private _tags = new Set<string>();
  private _stats = new Map<string, { key: string; stats?: JobStats }>();
}
