/**
 * The base of the job and run views: a widget that reloads its data while it is attached,
 * following runs in flight at the follow interval and backing off while the server is
 * away, like the panel.
 */
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ApiError, Job, Run, SchedAPI, asApiError } from './api';
import type { Gettext } from './i18n';
import { Backoff } from './polling';

/** What the detail views ask the rest of the extension to do. */
export interface DetailActions {
  openJob(id: string): void;
  openRun(id: string): void;
  /** Open the summary of batch `batchId` of job `jobId`. */
  openBatch(jobId: string, batchId: string): void;
  /** Open the comparison of run `a` with run `b`. */
  openCompare(a: string, b: string): void;
  editJob(job: Job): Promise<void>;
  /** Open the executed notebook of `run`, at cell `cell` when given. */
  openOutput(run: Run, cell?: number | null): Promise<void>;
  openNotebook(path: string): void;
  /** Job id → name, of the jobs the panel lists. */
  jobNames(): Record<string, string>;
  /** The poll interval (ms) when nothing is in flight. */
  interval(): number;
  /** The poll interval (ms) while a run is queued or running. */
  followInterval(): number;
  /** Tell the panel to refresh now. */
  changed(): void;
}

/** The message of an error, for a notification. */
export function errorText(error: unknown): string {
  return asApiError(error).message;
}

/** A ReactWidget that reloads its data while it is attached. */
export abstract class LiveView<T> extends ReactWidget {
  constructor(
    protected api: SchedAPI,
    protected actions: DetailActions,
    protected trans: TranslationBundle
  ) {
    super();
    this._ = trans.__.bind(trans);
  }

  data: T | null = null;
  error: string | null = null;
  /** True while the server does not answer (the view keeps what it showed). */
  offline = false;

  protected abstract load(): Promise<T>;
  /** Whether to keep polling after this answer. */
  protected live(_data: T): boolean {
    return true;
  }
  /** Whether this answer shows something in flight (polled at the follow interval). */
  protected following(_data: T): boolean {
    return false;
  }

  async reload(): Promise<void> {
    window.clearTimeout(this._timer);
    if (this._held) {
      return;
    }
    const loading = this.load();
    this._loading = loading.catch(() => undefined);
    try {
      this.data = await loading;
      this.error = null;
      this.offline = false;
      this._backoff.answered();
    } catch (error) {
      if (error instanceof ApiError && error.unreachable) {
        this.offline = true;
        this._backoff.unreachable();
      } else {
        this.error = errorText(error);
      }
    }
    if (this.isDisposed) {
      return;
    }
    this.update();
    if (this.isAttached && !this._held && (!this.data || this.live(this.data) || this.offline)) {
      const delay = this._backoff.delay(
        { interval: this.actions.interval(), follow: this.actions.followInterval() },
        !!this.data && !this.offline && this.following(this.data)
      );
      this._timer = window.setTimeout(() => void this.reload(), delay);
    }
  }

  /**
   * Stop polling until {@link resume}, once the load in flight has ended: while what the
   * view shows is being deleted, a poll would only get a 404.
   */
  protected async hold(): Promise<void> {
    this._held = true;
    window.clearTimeout(this._timer);
    await this._loading;
  }
  protected resume(): void {
    this._held = false;
    void this.reload();
  }

  protected onAfterAttach(): void {
    void this.reload();
  }
  protected onBeforeDetach(): void {
    window.clearTimeout(this._timer);
  }
  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  /** Run an action, then reload; errors become a notification. */
  protected async act(what: () => Promise<unknown>, done?: string): Promise<void> {
    try {
      await what();
      if (done) {
        Notification.success(done, { autoClose: 3000 });
      }
    } catch (error) {
      Notification.error(errorText(error), { autoClose: 8000 });
    }
    this.actions.changed();
    await this.reload();
  }

  /** The view before its first answer: the banner, or "Loading…". */
  protected loading(): JSX.Element {
    return (
      <div className="jp-sched-detail-body">
        {this.banner() ?? <div className="jp-sched-muted">{this._('Loading…')}</div>}
      </div>
    );
  }

  protected banner(): JSX.Element | null {
    const _ = this._;
    if (this.offline) {
      return (
        <div className="jp-sched-banner jp-sched-banner-warn" role="status" data-banner="offline">
          {_('Cannot reach the server — retrying…')}
        </div>
      );
    }
    if (this.error) {
      return (
        <div className="jp-sched-banner jp-sched-banner-error" role="alert">
          {this.error}
        </div>
      );
    }
    return null;
  }

  protected _: Gettext;
  private _timer = 0;
  private _held = false;
  private _loading: Promise<unknown> = Promise.resolve();
  private _backoff = new Backoff();
}
