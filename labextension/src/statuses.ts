/**
 * Run statuses, declared once: the union comes from the generated API types (the server's
 * `RunStatus`); the list and the sets the panel reasons with are spelled out here, and the
 * compiler refuses a list that misses a status of the union. The server's OpenAPI document
 * carries its sets (`x-final`, `x-failure`, `x-retryable` on the status enum, from
 * jupyter_sched/statuses.py); a unit test holds these to them.
 */
import type { components } from './api-types';

export type RunStatus = components['schemas']['Run']['status'];

/**
 * `list`, typed so that it compiles only when it names every member of `T`: a status
 * added on the server then fails the build until the panel knows about it.
 */
function every<T extends string>() {
  return <const L extends readonly T[]>(
    list: L &
      ([Exclude<T, L[number]>] extends [never] ? unknown : { missing: Exclude<T, L[number]> })
  ): readonly T[] => list;
}

/** Every run status, in the order the UI lists them. */
export const RUN_STATUSES: readonly RunStatus[] = every<RunStatus>()([
  'queued',
  'running',
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'lost',
  'skipped'
]);

/** Statuses after which a run changes no more. */
export const FINAL: ReadonlySet<RunStatus> = new Set<RunStatus>([
  'succeeded',
  'failed',
  'timed_out',
  'cancelled',
  'lost',
  'skipped'
]);

/** Statuses of a run still to end: waiting for a worker, or running. */
export const IN_FLIGHT: ReadonlySet<RunStatus> = new Set(RUN_STATUSES.filter(s => !FINAL.has(s)));

/** The ends the user is told about as failures. */
export const FAILURE: ReadonlySet<RunStatus> = new Set<RunStatus>(['failed', 'timed_out', 'lost']);

/** The ends after which a job with retries left runs again (a new attempt). */
export const RETRYABLE: ReadonlySet<RunStatus> = new Set<RunStatus>([
  'failed',
  'timed_out',
  'lost'
]);
