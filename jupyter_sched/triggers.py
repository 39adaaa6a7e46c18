"""Triggers: when a job fires next, and whether a trigger is valid.

The cron and interval arithmetic (daylight-saving rules included) is in
:mod:`jupyter_sched.schedules`; the pydantic shapes of triggers are in
:mod:`jupyter_sched.schemas`; a stored trigger in words is in
:mod:`jupyter_sched.storedtriggers`. Everything here is a pure function of its arguments, with
``now`` passed in.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from . import schedules
from .errors import InvalidInput
from .models import Job
from .schemas import (
    TRIGGER_KINDS,
    CronTrigger,
    IntervalTrigger,
    OnceTrigger,
    Trigger,
)
from .schemas import stored_trigger as _parse_stored_trigger
from .storedtriggers import describe_time

__all__ = [
    "cached_trigger", "check_trigger", "describe_time", "job_next_fire", "next_fire",
    "next_fires", "schedule_error_text", "stored_trigger_error",
]  # fmt: skip


def cached_trigger(data: dict[str, Any]) -> Trigger:
    """A job's stored trigger, parsed once per distinct trigger (cached: ten thousand jobs
    on ``0 6 * * *`` cost one parse)."""
    try:
        return _parsed_by_items(tuple(sorted(data.items())))
    except TypeError:  # a value that is not hashable (a list of upstream jobs)
        return _parsed_by_json(json.dumps(data, sort_keys=True, default=str))


@functools.lru_cache(maxsize=4096)
def _parsed_by_items(items: tuple[tuple[str, Any], ...]) -> Trigger:
    return _parse_stored_trigger(dict(items))


@functools.lru_cache(maxsize=4096)
def _parsed_by_json(key: str) -> Trigger:
    return _parse_stored_trigger(json.loads(key))


@functools.lru_cache(maxsize=65536)
def _next_cron_fire(expr: str, tz: str, after: datetime) -> datetime:
    """Cached: jobs sharing a cron expression and zone share their fires."""
    return schedules.next_cron_fire(expr, tz, after)


def next_fire(
    trigger: Trigger | dict[str, Any],
    after: datetime,
    *,
    anchor: datetime,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> datetime | None:
    """The first fire of ``trigger`` strictly after ``after`` within the window, or None.

    ``anchor`` is where interval schedules count from (the job's start or creation).
    """
    if isinstance(trigger, dict):
        trigger = cached_trigger(trigger)
    if start_at is not None and after < start_at:
        after = start_at - timedelta(microseconds=1)
    fire: datetime | None
    match trigger:
        case CronTrigger():
            fire = _next_cron_fire(trigger.cron, trigger.timezone, after)
        case IntervalTrigger():
            fire = schedules.next_interval_fire(trigger.every_seconds, start_at or anchor, after)
        case OnceTrigger():
            fire = trigger.at if trigger.at > after else None
        case _:
            fire = None
    if fire is not None and end_at is not None and fire > end_at:
        return None
    return fire


def job_next_fire(job: Job | Any, after: datetime) -> datetime | None:
    """The job's next fire after ``after``, honouring its window and ``max_runs``
    (``job``: a :class:`Job` or a row with its columns)."""
    if job.max_runs is not None and job.fire_count >= job.max_runs:
        return None
    return next_fire(
        job.trigger, after, anchor=job.created_at, start_at=job.start_at, end_at=job.end_at
    )


def iter_fires(
    trigger: Trigger | dict[str, Any],
    after: datetime,
    *,
    anchor: datetime,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> Iterator[datetime]:
    """The fires of ``trigger`` strictly after ``after`` within the window, ascending:
    those :func:`next_fire` gives one by one, a cron schedule walked once."""
    if isinstance(trigger, dict):
        trigger = cached_trigger(trigger)
    if not isinstance(trigger, CronTrigger):
        fire = next_fire(trigger, after, anchor=anchor, start_at=start_at, end_at=end_at)
        while fire is not None:
            yield fire
            fire = next_fire(trigger, fire, anchor=anchor, start_at=start_at, end_at=end_at)
        return
    if start_at is not None and after < start_at:
        after = start_at - timedelta(microseconds=1)
    for fire in schedules.iter_cron_fires(trigger.cron, trigger.timezone, after):
        if end_at is not None and fire > end_at:
            return
        yield fire


def next_fires(
    trigger: Trigger,
    now: datetime,
    count: int,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> list[datetime]:
    """Up to ``count`` fires of ``trigger`` after ``now`` (a preview; intervals count from
    ``now``)."""
    fires = iter_fires(trigger, now, anchor=now, start_at=start_at, end_at=end_at)
    return list(itertools.islice(fires, count))


def check_trigger(trigger: Trigger, now: datetime) -> None:
    """Refuse a new trigger that can never fire: a ``once`` trigger in the past.

    (The shape, the cron expression and the timezone are checked by the schema.)
    """
    if isinstance(trigger, OnceTrigger) and trigger.at <= now:
        at = trigger.at.isoformat()
        raise InvalidInput(f"trigger.at: {at} is in the past", field="trigger.at")


def schedule_error_text(exc: schedules.ScheduleError) -> str:
    """``trigger.<field>: <what is wrong>``, for a job's stored trigger."""
    text = exc.message.removeprefix(f"{exc.field}:").strip()
    return f"trigger.{exc.field}: {text}"


def stored_trigger_error(exc: Exception) -> str:
    """What is wrong with a stored trigger that raised ``exc`` when its next fire was
    computed, as ``trigger.<field>: <why>`` where the field is known."""
    if isinstance(exc, schedules.ScheduleError):
        return schedule_error_text(exc)
    if isinstance(exc, ValidationError):  # the stored trigger lacks a trigger's shape
        error = exc.errors()[0]
        parts = [str(part) for part in error["loc"]]
        if parts and parts[0] in TRIGGER_KINDS:
            parts = parts[1:]  # pydantic's tag of the union
        return f"{'.'.join(['trigger', *parts])}: {error['msg']}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
