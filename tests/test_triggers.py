"""Triggers in words (:mod:`jupyter_sched.storedtriggers`) and trigger checks
(:mod:`jupyter_sched.triggers`); the fire-time arithmetic they rest on is tested in
``test_schedules.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jupyter_sched.errors import InvalidInput
from jupyter_sched.schemas import stored_trigger
from jupyter_sched.storedtriggers import describe_trigger
from jupyter_sched.triggers import check_trigger, describe_time, next_fires

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def words(trigger: dict[str, Any], names: dict[str, str] | None = None) -> str:
    return describe_trigger(stored_trigger(trigger).model_dump(mode="json"), names)


@pytest.mark.parametrize(
    ("trigger", "text"),
    [
        ({"kind": "cron", "cron": "0 6 * * 1-5", "timezone": "Europe/Paris"},
         "at 06:00 on Monday to Friday (Europe/Paris)"),
        ({"kind": "interval", "every_seconds": 300}, "every 5 minutes"),
        ({"kind": "once", "at": "2026-12-01T10:00:00Z"}, "once, on 1 December 2026 at 10:00 UTC"),
        ({"kind": "once", "at": "2026-12-24T18:30:15+01:00"},
         "once, on 24 December 2026 at 17:30:15 UTC"),
        ({"kind": "manual"}, "only when run by hand"),
        ({"kind": "event", "event": "sales.loaded"}, "when the event 'sales.loaded' is posted"),
    ],
)  # fmt: skip
def test_triggers_in_words(trigger: dict[str, Any], text: str) -> None:
    assert words(trigger) == text


NAMES = {"A": "daily sales", "B": "weekly report", "C": "stock", "D": "prices", "E": "web"}


@pytest.mark.parametrize(
    ("jobs", "condition", "text"),
    [
        (["A"], "success", "after 'daily sales' has succeeded"),
        (["A", "B"], "failure", "after 'daily sales' and 'weekly report' have failed"),
        (["A", "B", "C"], "completion",
         "after 'daily sales', 'weekly report' and 'stock' have finished"),
        (["A", "B", "C", "D"], "success",
         "after 'daily sales', 'weekly report', 'stock' and 1 more job have succeeded"),
        (["A", "B", "C", "D", "E"], "success",
         "after 'daily sales', 'weekly report', 'stock' and 2 more jobs have succeeded"),
        (["A", "01GONE"], "success", "after 'daily sales' and '01GONE' have succeeded"),
    ],
)  # fmt: skip
def test_after_triggers_name_their_jobs_and_condition(
    jobs: list[str], condition: str, text: str
) -> None:
    assert words({"kind": "after", "jobs": jobs, "condition": condition}, NAMES) == text


def test_after_trigger_without_names_shows_ids() -> None:
    assert words({"kind": "after", "jobs": ["01ABC"]}) == "after '01ABC' has succeeded"


def test_times_read_on_a_timezones_wall_clock() -> None:
    at = datetime(2026, 7, 1, 4, 5, tzinfo=UTC)
    assert describe_time(at) == "1 July 2026 at 04:05 UTC"
    assert describe_time(at, "America/New_York") == "1 July 2026 at 00:05 (America/New_York)"
    assert describe_time(at, "Asia/Tokyo") == "1 July 2026 at 13:05 (Asia/Tokyo)"


def test_a_once_trigger_in_the_past_is_refused() -> None:
    past = stored_trigger({"kind": "once", "at": (NOW - timedelta(seconds=1)).isoformat()})
    with pytest.raises(InvalidInput) as info:
        check_trigger(past, NOW)
    assert info.value.field == "trigger.at" and "is in the past" in info.value.message
    with pytest.raises(InvalidInput):
        check_trigger(stored_trigger({"kind": "once", "at": NOW.isoformat()}), NOW)
    check_trigger(stored_trigger({"kind": "once", "at": (NOW + timedelta(1)).isoformat()}), NOW)
    check_trigger(stored_trigger({"kind": "manual"}), NOW)


def test_next_fires_of_a_preview() -> None:
    every = stored_trigger({"kind": "interval", "every_seconds": 3600})
    assert next_fires(every, NOW, 3) == [NOW + timedelta(hours=h) for h in (1, 2, 3)]
    end = NOW + timedelta(hours=2)
    assert next_fires(every, NOW, 5, end_at=end) == [NOW + timedelta(hours=1), end]
    once = stored_trigger({"kind": "once", "at": "2026-12-02T00:00:00Z"})
    assert next_fires(once, NOW, 5) == [datetime(2026, 12, 2, tzinfo=UTC)]
    assert next_fires(stored_trigger({"kind": "manual"}), NOW, 5) == []
