"""Triggers: when a job fires next, how its trigger reads, and whether a trigger is valid.

The cron and interval arithmetic (daylight-saving rules included) is in
:mod:`jupyter_sched.schedules`; the pydantic shapes of triggers are in
:mod:`jupyter_sched.schemas`. Everything here is a pure function of its arguments, with
``now`` passed in.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from . import schedules
from .errors import InvalidInput
from .models import Job
from .schemas import (
    TRIGGER_KINDS,
    AfterTrigger,
    CronTrigger,
    EventTrigger,
    IntervalTrigger,
    OnceTrigger,
    Trigger,
)
from .schemas import stored_trigger as _parse_stored_trigger


def stored_trigger(data: dict[str, Any]) -> Trigger:
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
        trigger = stored_trigger(trigger)
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
    fires: list[datetime] = []
    after = now
    while len(fires) < count:
        fire = next_fire(trigger, after, anchor=now, start_at=start_at, end_at=end_at)
        if fire is None:
            break
        fires.append(fire)
        after = fire
    return fires


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


#: How a run of each upstream job must end for an ``after`` trigger to fire, in words.
_ENDED = {"success": "succeeded", "failure": "failed", "completion": "finished"}
#: Upstream jobs named in a description before the rest are counted.
_NAMED_UPSTREAMS = 3
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def describe_trigger(trigger: Trigger, job_names: Mapping[str, str] | None = None) -> str:
    """Plain-language description of a trigger, as every client shows it.

    ``job_names``: the names of the jobs an ``after`` trigger follows, by id (a job not in
    it, deleted or not visible to the caller, is named by its id).
    """
    match trigger:
        case CronTrigger():
            return schedules.describe_cron(trigger.cron, trigger.timezone)
        case IntervalTrigger():
            return schedules.describe_interval(trigger.every_seconds)
        case OnceTrigger():
            return f"once, on {describe_time(trigger.at)}"
        case EventTrigger():
            return f"when the event '{trigger.event}' is posted"
        case AfterTrigger():
            names = [(job_names or {}).get(job_id, job_id) for job_id in trigger.jobs]
            verb = "has" if len(names) == 1 else "have"
            return f"after {_name_list(names)} {verb} {_ENDED[trigger.condition]}"
        case _:
            return "only when run by hand"


def describe_time(at: datetime, timezone: str = "UTC") -> str:
    """``at`` as people read it, on the wall clock of ``timezone``: ``1 December 2026 at
    10:00 UTC`` (seconds only when there are some)."""
    local = at.astimezone(ZoneInfo(timezone))
    clock = f"{local:%H:%M}" + (f":{local:%S}" if local.second else "")
    zone = "UTC" if timezone == "UTC" else f"({timezone})"
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} at {clock} {zone}"


def _name_list(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b' and 'c'``, or ``'a', 'b', 'c' and 2 more jobs``."""
    quoted = [f"'{name}'" for name in names[:_NAMED_UPSTREAMS]]
    rest = len(names) - len(quoted)
    if rest:
        return f"{', '.join(quoted)} and {rest} more job{'s' if rest > 1 else ''}"
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def upstream_job_ids(triggers: Iterable[Trigger]) -> set[str]:
    """The jobs the ``after`` triggers among ``triggers`` follow (to look up their names)."""
    return {job_id for t in triggers if isinstance(t, AfterTrigger) for job_id in t.jobs}
