/**
 * When to ask the server again. Runs often last a second or two: polling at the idle
 * interval would show them go from queued straight to their end, so while any run is
 * queued or running the panel and the run view follow it at the (shorter) follow interval.
 */
import { FINISHED, type RunStatus } from './api';

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
    if (!FINISHED.has(status)) {
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
