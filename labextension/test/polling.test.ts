import { describe, expect, it } from 'vitest';

import { Backoff, inFlight, MAX_BACKOFF, nextPollDelay } from '../src/polling';

describe('inFlight', () => {
  it('is true while a run is queued or running', () => {
    expect(inFlight(['succeeded', 'queued'])).toBe(true);
    expect(inFlight(['running'])).toBe(true);
  });
  it('is false when every run has ended, or there are none', () => {
    expect(inFlight(['succeeded', 'failed', 'cancelled', 'lost', 'timed_out', 'skipped'])).toBe(
      false
    );
    expect(inFlight([])).toBe(false);
  });
});

describe('nextPollDelay', () => {
  const timing = { interval: 2000, follow: 500 };

  it('waits the idle interval when nothing is in flight', () => {
    expect(nextPollDelay(timing, false)).toBe(2000);
  });
  it('follows a run in flight at the follow interval', () => {
    expect(nextPollDelay(timing, true)).toBe(500);
  });
  it('never follows slower than the idle interval', () => {
    expect(nextPollDelay({ interval: 300, follow: 500 }, true)).toBe(300);
  });
  it('refuses intervals below 250 ms', () => {
    expect(nextPollDelay({ interval: 10, follow: 1 }, true)).toBe(250);
    expect(nextPollDelay({ interval: 10, follow: 1 }, false)).toBe(250);
  });
  it('backs off exponentially while the server is away, up to 30 s', () => {
    expect(nextPollDelay({ ...timing, failures: 1 }, true)).toBe(4000);
    expect(nextPollDelay({ ...timing, failures: 3 }, false)).toBe(16000);
    expect(nextPollDelay({ ...timing, failures: 10 }, false)).toBe(MAX_BACKOFF);
  });
});

describe('Backoff', () => {
  const timing = { interval: 2000, follow: 500 };

  it('waits longer after each request the server did not answer, then recovers', () => {
    const backoff = new Backoff();
    expect(backoff.delay(timing, true)).toBe(500);
    backoff.unreachable();
    expect(backoff.delay(timing, true)).toBe(4000);
    backoff.unreachable();
    backoff.unreachable();
    expect(backoff.failures).toBe(3);
    expect(backoff.delay(timing, false)).toBe(16000);
    for (let i = 0; i < 10; i++) {
      backoff.unreachable();
    }
    expect(backoff.delay(timing, false)).toBe(MAX_BACKOFF);
    backoff.answered();
    expect(backoff.failures).toBe(0);
    expect(backoff.delay(timing, true)).toBe(500);
    expect(backoff.delay(timing, false)).toBe(2000);
  });
});
