import { describe, expect, it } from 'vitest';

import openapi from '../openapi.json';
import { FAILURE, FINAL, IN_FLIGHT, RETRYABLE, RUN_STATUSES } from '../src/statuses';

const schemas = openapi.components.schemas;

describe('run statuses', () => {
  it('are the server’s, in its order', () => {
    expect(RUN_STATUSES).toEqual(schemas.Run.properties.status.enum);
    expect(RUN_STATUSES).toEqual(schemas.RunListQuery.properties.status.anyOf[0].enum);
  });

  it('are each either in flight or final', () => {
    for (const status of RUN_STATUSES) {
      expect(IN_FLIGHT.has(status) !== FINAL.has(status)).toBe(true);
    }
    expect([...IN_FLIGHT]).toEqual(['queued', 'running']);
    expect([...FINAL].sort()).toEqual(
      ['succeeded', 'failed', 'timed_out', 'cancelled', 'lost', 'skipped'].sort()
    );
  });

  it('fall into the server’s sets (x-final, x-failure, x-retryable of the status enum)', () => {
    for (const status of [
      schemas.Run.properties.status,
      schemas.RunListQuery.properties.status.anyOf[0]
    ]) {
      expect([...FINAL]).toEqual(status['x-final']);
      expect([...FAILURE]).toEqual(status['x-failure']);
      expect([...RETRYABLE]).toEqual(status['x-retryable']);
    }
  });

  it('end in failure or are retried only when final', () => {
    expect([...FAILURE].sort()).toEqual(['failed', 'lost', 'timed_out']);
    expect([...RETRYABLE].sort()).toEqual(['failed', 'lost', 'timed_out']);
    for (const status of [...FAILURE, ...RETRYABLE]) {
      expect(FINAL.has(status)).toBe(true);
    }
  });
});
