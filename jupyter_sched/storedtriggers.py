"""A job's trigger as it is stored (its JSON form, a dict): in words, and the jobs it
follows.

Kept light on purpose: ``jupyter sched jobs list`` words every job's trigger from its row,
without pydantic (the shapes are :mod:`jupyter_sched.schemas`') and without croniter until
a cron expression is worded (:func:`jupyter_sched.schedules.describe_cron`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from . import schedules

__all__ = ["describe_time", "describe_trigger", "upstream_ids"]

#: How a run of each upstream job must end for an ``after`` trigger to fire, in words.
_ENDED = {"success": "succeeded", "failure": "failed", "completion": "finished"}
#: Upstream jobs named in a description before the rest are counted.
_NAMED_UPSTREAMS = 3


def upstream_ids(trigger: Mapping[str, Any]) -> list[str]:
    """The upstream jobs of a stored trigger (empty unless it is ``after``)."""
    return list(trigger.get("jobs", [])) if trigger.get("kind") == "after" else []


def describe_trigger(trigger: Mapping[str, Any], job_names: Mapping[str, str] | None = None) -> str:
    """Plain-language description of a stored trigger, as every client shows it.

    ``job_names``: the names of the jobs an ``after`` trigger follows, by id (a job not in
    it, deleted or not visible to the caller, is named by its id). Raises ``KeyError``,
    ``ValueError`` or ``TypeError`` for a trigger without the fields of its kind.
    """
    match trigger.get("kind"):
        case "cron":
            return schedules.describe_cron(trigger["cron"], trigger["timezone"])
        case "interval":
            return schedules.describe_interval(trigger["every_seconds"])
        case "once":
            return f"once, on {describe_time(datetime.fromisoformat(trigger['at']))}"
        case "event":
            return f"when the event '{trigger['event']}' is posted"
        case "after":
            names = [(job_names or {}).get(job_id, job_id) for job_id in trigger["jobs"]]
            verb = "has" if len(names) == 1 else "have"
            return f"after {_name_list(names)} {verb} {_ENDED[trigger['condition']]}"
        case _:
            return "only when run by hand"


def describe_time(at: datetime, timezone: str = "UTC") -> str:
    """``at`` as people read it, on the wall clock of ``timezone``: ``1 December 2026 at
    10:00 UTC`` (seconds only when there are some)."""
    local = at.astimezone(ZoneInfo(timezone))
    clock = f"{local:%H:%M}" + (f":{local:%S}" if local.second else "")
    zone = "UTC" if timezone == "UTC" else f"({timezone})"
    return f"{local.day} {schedules.MONTH_NAMES[local.month - 1]} {local.year} at {clock} {zone}"


def _name_list(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b' and 'c'``, or ``'a', 'b', 'c' and 2 more jobs``."""
    quoted = [f"'{name}'" for name in names[:_NAMED_UPSTREAMS]]
    rest = len(names) - len(quoted)
    if rest:
        return f"{', '.join(quoted)} and {rest} more job{'s' if rest > 1 else ''}"
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
