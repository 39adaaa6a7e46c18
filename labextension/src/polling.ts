/**
 * When to ask the server again. Runs often last a second or two: polling at the idle
 * interval would show them go from queued straight to their end, so while any run is
 * queued or running the panel and the run view follow it at the (shorter) follow interval.
 */
import { FINAL, type RunStatus } from './statuses';

export interface PollTiming {
  /** Idle interval (ms), from the settings. */
  interval: number;
  /** Interval while a run is in flight (ms). */
  follow: number;
  /** Requests that failed in a row because the server did not answer. */
  failures?: number;
}

/** Longest wait between two attempts while the server is away (ms). */
export const MAX_BACKOFF = 30_000;

/** Shortest poll interval accepted from the settings (ms). */
export const MIN_INTERVAL = 250;

/** True when one of `statuses` can still change. */
export function inFlight(statuses: Iterable<RunStatus>): boolean {
  for (const status of statuses) {
    if (!FINAL.has(status)) {
      return true;
    }
  }
  return false;
}

/**
 * The delay before the next request: exponential back-off while the server is away,
 * else the follow interval while a run is in flight (never slower than idle), else idle.
 */
export function nextPollDelay(timing: PollTiming, following: boolean): number {
  const interval = Math.max(MIN_INTERVAL, timing.interval);
  const failures = timing.failures ?? 0;
  if (failures > 0) {
    return Math.min(interval * 2 ** failures, MAX_BACKOFF);
  }
  if (following) {
    return Math.min(interval, Math.max(MIN_INTERVAL, timing.follow));
  }
  return interval;
}

/**
 * The back-off of one poller (the panel, a detail view): how many requests in a row did not
 * reach the server, and so how long to wait before the next one.
 */
export class Backoff {
  /** Requests that failed in a row because the server did not answer. */
  get failures(): number {
    return this._failures;
  }

  /** The server answered: back to the usual intervals. */
  answered(): void {
    this._failures = 0;
  }

  /** A request did not reach the server: wait longer before the next one. */
  unreachable(): void {
    this._failures++;
  }

  /** The delay before the next request (see {@link nextPollDelay}). */
  delay(timing: { interval: number; follow: number }, following: boolean): number {
    return nextPollDelay({ ...timing, failures: this._failures }, following);
  }

  private _failures = 0;
}
