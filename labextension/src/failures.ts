/**
 * Which runs just failed, from one poll of the recent runs to the next: a run seen queued
 * or running that is now failed, timed out or lost, or a run first seen already failed
 * that finished after the panel loaded. Runs already failed at load are not news.
 */
import type { Run } from './api';
import { FAILURE, IN_FLIGHT, type RunStatus } from './statuses';

export class FailureWatch {
  /**
   * The runs of `runs` that failed since the last call; none on the first call.
   * `now` (ms) is when the first answer arrived.
   */
  update(runs: readonly Run[], now: number = Date.now()): Run[] {
    const failed: Run[] = [];
    if (this._since === null) {
      this._since = now;
    } else {
      for (const run of runs) {
        if (!FAILURE.has(run.status)) {
          continue;
        }
        const before = this._known.get(run.id);
        if (before !== undefined) {
          if (IN_FLIGHT.has(before)) {
            failed.push(run);
          }
        } else {
          const finished = run.finished_at ? Date.parse(run.finished_at) : NaN;
          if (!Number.isNaN(finished) && finished >= this._since) {
            failed.push(run);
          }
        }
      }
    }
    for (const run of runs) {
      this._known.set(run.id, run.status);
    }
    return failed;
  }

  private _known = new Map<string, RunStatus>();
  private _since: number | null = null;
}
