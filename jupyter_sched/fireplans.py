"""What a job's due fires become, as pure functions of its row and ``now``: the fires to
run, the missed fires its misfire policy drops (counted, not walked one by one), its next
fire. :mod:`jupyter_sched.firing` writes the plans of a batch of due jobs at once.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .schemas import IntervalTrigger
from .triggers import cached_trigger, job_next_fire

#: Fires of one job run per pass.
MAX_CATCH_UP = 1000
#: Missed cron fires counted one by one before a missed-fires record says "at least":
#: the walk costs a cron step per fire, and a long outage's count adds little to its
#: first and last fire.
MAX_COUNTED_MISSES = 50


@dataclass(frozen=True)
class Missed:
    """The fires of one job that came while no scheduler ran: how many, first and last.

    ``count`` is exact for intervals (arithmetic) and for cron up to
    :data:`MAX_COUNTED_MISSES` (a bounded walk); ``exact`` is False beyond that.
    """

    count: int
    first: datetime
    last: datetime
    #: The fire before ``last`` (None when ``count`` is 1).
    previous: datetime | None = None
    exact: bool = True

    def describe(self) -> str:
        if self.count == 1:
            return f"the fire at {self.last.isoformat()}"
        many = str(self.count) if self.exact else f"at least {self.count}"
        return f"{many} fires from {self.first.isoformat()} to {self.last.isoformat()}"


@dataclass
class Plan:
    """What one job's due fires become: runs, a missed-fires record, its next fire."""

    job: Any
    due_at: datetime
    following: datetime | None
    to_run: list[datetime]
    missed: Missed | None = None


def plan_fires(job: Any, now: datetime, grace_seconds: float) -> Plan:
    """The fires of ``job`` due at ``now`` with its misfire policy applied (pure).

    Fires older than ``grace_seconds`` are missed: ``run_once`` runs the latest of them,
    ``skip`` none. Missed fires are counted, not walked one by one, for intervals.
    """
    due_at: datetime = job.next_fire_at
    cutoff = now - timedelta(seconds=grace_seconds)
    to_run: list[datetime] = []
    missed: Missed | None = None
    cursor: datetime | None = due_at
    if due_at < cutoff:
        missed, cursor = _missed_fires(job, due_at, cutoff)
        if job.misfire != "skip":
            to_run.append(missed.last)
            missed = _all_but_last(missed)
    while cursor is not None and cursor <= now and len(to_run) < MAX_CATCH_UP:
        to_run.append(cursor)
        cursor = job_next_fire(job, cursor)
    if cursor is not None and cursor <= now:
        cursor = job_next_fire(job, now)  # beyond what one pass runs: resume from now
    if job.max_runs is not None:
        to_run = to_run[: max(job.max_runs - job.fire_count, 0)]
        if job.fire_count + len(to_run) >= job.max_runs:
            cursor = None
    return Plan(job, due_at, cursor, to_run, missed)


def _interval(job: Any) -> tuple[timedelta, datetime] | None:
    trigger = cached_trigger(job.trigger)
    if not isinstance(trigger, IntervalTrigger):
        return None
    every = timedelta(microseconds=round(trigger.every_seconds * 1_000_000))
    return every, job.start_at or job.created_at


def _missed_fires(job: Any, due_at: datetime, cutoff: datetime) -> tuple[Missed, datetime | None]:
    """The fires from ``due_at`` (included) to ``cutoff`` (excluded), and the first fire
    at or after ``cutoff`` (None when the schedule ends first)."""
    interval = _interval(job)
    if interval is not None:
        every, anchor = interval
        last_due = cutoff - timedelta(microseconds=1)
        if job.end_at is not None:
            last_due = min(last_due, job.end_at)
        steps = max((last_due - anchor) // every, 0)
        last = max(anchor + steps * every, due_at)
        count = (last - due_at) // every + 1
        previous = last - every if count > 1 else None
        return Missed(count, due_at, last, previous), job_next_fire(job, last)
    # Jobs that share a schedule and were due at the same instant missed the same fires
    # (after an outage, all of them): the walk is made once for them.
    exhausted = job.max_runs is not None and job.fire_count >= job.max_runs
    schedule = json.dumps(job.trigger, sort_keys=True, default=str)
    return _walk_missed(schedule, job.start_at, job.end_at, exhausted, due_at, cutoff)


@functools.lru_cache(maxsize=1024)
def _walk_missed(
    schedule: str,
    start_at: datetime | None,
    end_at: datetime | None,
    exhausted: bool,
    due_at: datetime,
    cutoff: datetime,
) -> tuple[Missed, datetime | None]:
    """:func:`_missed_fires` of a schedule other than an interval (whose fires do not
    depend on the job's creation), from what its fires depend on."""
    job = _Schedule(json.loads(schedule), start_at, end_at, 0 if exhausted else None)
    fires = [due_at]
    following = job_next_fire(job, due_at)
    while following is not None and following < cutoff and len(fires) < MAX_COUNTED_MISSES:
        fires.append(following)
        following = job_next_fire(job, following)
    exact = following is None or following >= cutoff
    if not exact:
        # more than one walk's worth: find the latest missed fires from a little before
        # the cutoff instead of walking the whole outage
        assert following is not None
        fires = [due_at, *_last_fires_before(job, cutoff, following)]
        following = job_next_fire(job, fires[-1])
    previous = fires[-2] if len(fires) > 1 else None
    count = len(fires) if exact else MAX_COUNTED_MISSES
    return Missed(count, due_at, fires[-1], previous, exact), following


@dataclass(frozen=True)
class _Schedule:
    """What :func:`job_next_fire` reads of a job whose trigger is not an interval."""

    trigger: dict[str, Any]
    start_at: datetime | None
    end_at: datetime | None
    #: 0 for a job that has made its ``max_runs`` (it fires no more), else None.
    max_runs: int | None
    fire_count: int = 0
    created_at: None = None


def _last_fires_before(job: Any, cutoff: datetime, known: datetime) -> list[datetime]:
    """The last two fires before ``cutoff`` (``known`` is a fire before it), walking
    forward from ever earlier starts rather than from ``known``."""
    for back in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1),
                 timedelta(days=31), timedelta(days=366)):  # fmt: skip
        start = cutoff - back
        if start <= known:
            break
        fires: list[datetime] = []
        fire = job_next_fire(job, start - timedelta(microseconds=1))
        while fire is not None and fire < cutoff:
            fires.append(fire)
            fire = job_next_fire(job, fire)
        if len(fires) >= 2:
            return fires[-2:]
    fires = [known]
    fire = job_next_fire(job, known)
    while fire is not None and fire < cutoff:
        fires = [fires[-1], fire]
        fire = job_next_fire(job, fire)
    return fires


def _all_but_last(span: Missed) -> Missed | None:
    """``span`` without its last fire (which ``run_once`` runs), or None if it was alone."""
    if span.count <= 1 or span.previous is None:
        return None
    return Missed(span.count - 1, span.first, span.previous, None, span.exact)
