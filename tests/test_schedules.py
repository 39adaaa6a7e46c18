"""Unit tests for the pure fire-time arithmetic in ``jupyter_sched.schedules``.

Daylight-saving facts the expectations rely on (2026):

* America/New_York springs forward on 8 March at 02:00 EST -> 03:00 EDT (07:00 UTC) and falls
  back on 1 November at 02:00 EDT -> 01:00 EST (06:00 UTC).
* Europe/Berlin springs forward on 29 March at 02:00 CET -> 03:00 CEST (01:00 UTC) and falls
  back on 25 October at 03:00 CEST -> 02:00 CET (01:00 UTC).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

import pytest

from jupyter_sched.schedules import (
    ScheduleError,
    collapse_misfires,
    cron_fires,
    describe_cron,
    describe_interval,
    next_cron_fire,
    next_interval_fire,
    validate_cron,
    validate_timezone,
)

NY = "America/New_York"
BERLIN = "Europe/Berlin"
HOUR = timedelta(hours=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def hourly(first: datetime, count: int) -> list[datetime]:
    return [first + i * HOUR for i in range(count)]


def local_labels(fires: list[datetime], tz: str) -> list[str]:
    """Wall-clock labels with the zone abbreviation, e.g. '01:00 EST'."""
    return [f.astimezone(ZoneInfo(tz)).strftime("%H:%M %Z") for f in fires]


# --- New York, fall back (2026-11-01, 01:00-02:00 happens twice) -----------------------------


def test_ny_fall_back_daily_in_repeated_hour_fires_once_at_first_occurrence() -> None:
    fires = cron_fires("30 1 * * *", NY, utc(2026, 10, 31), 3)
    assert fires == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert local_labels(fires, NY) == ["01:30 EDT", "01:30 EDT", "01:30 EST"]


def test_ny_fall_back_daily_not_repeated_in_second_copy_of_hour() -> None:
    # Just after the first 01:30 EDT fire, and from inside the repeated (EST) 01:xx hour.
    assert next_cron_fire("30 1 * * *", NY, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)
    assert next_cron_fire("30 1 * * *", NY, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)
    assert next_cron_fire("30 1 * * *", NY, utc(2026, 11, 1, 5, 10)) == utc(2026, 11, 1, 5, 30)


def test_ny_fall_back_fixed_hour_with_minute_steps_runs_first_copy_only() -> None:
    fires = cron_fires("*/20 1 * * *", NY, utc(2026, 11, 1, 4), 4)
    assert fires == [
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 20),
        utc(2026, 11, 1, 5, 40),
        utc(2026, 11, 2, 6, 0),
    ]


def test_ny_fall_back_hourly_fires_every_real_hour() -> None:
    # 24 real hours from 00:00 EDT: 25 wall-clock hours minus the one we end before.
    fires = cron_fires("0 * * * *", NY, utc(2026, 11, 1, 3, 30), 24)
    assert fires == hourly(utc(2026, 11, 1, 4), 24)
    labels = local_labels(fires, NY)
    assert labels[:4] == ["00:00 EDT", "01:00 EDT", "01:00 EST", "02:00 EST"]
    assert labels[-1] == "22:00 EST"


def test_ny_fall_back_half_hourly_fires_in_both_copies() -> None:
    fires = cron_fires("*/30 * * * *", NY, utc(2026, 11, 1, 4, 45), 5)
    assert fires == [utc(2026, 11, 1, 5) + timedelta(minutes=m) for m in (0, 30, 60, 90, 120)]
    assert local_labels(fires, NY) == [
        "01:00 EDT",
        "01:30 EDT",
        "01:00 EST",
        "01:30 EST",
        "02:00 EST",
    ]


# --- New York, spring forward (2026-03-08, 02:00-03:00 does not exist) ------------------------


def test_ny_spring_forward_daily_in_skipped_hour_fires_at_the_jump() -> None:
    fires = cron_fires("30 2 * * *", NY, utc(2026, 3, 7), 3)
    assert fires == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]
    assert local_labels(fires, NY) == ["02:30 EST", "03:00 EDT", "02:30 EDT"]


def test_ny_spring_forward_many_fires_in_gap_collapse_to_one() -> None:
    fires = cron_fires("*/15 2 * * *", NY, utc(2026, 3, 8), 3)
    assert fires == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0), utc(2026, 3, 9, 6, 15)]


def test_ny_spring_forward_gap_fire_and_3am_fire_are_not_duplicated() -> None:
    fires = cron_fires("0,30 2,3 * * *", NY, utc(2026, 3, 8), 3)
    assert fires == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 0)]


def test_ny_spring_forward_hourly_fires_every_real_hour() -> None:
    fires = cron_fires("0 * * * *", NY, utc(2026, 3, 8, 4, 30), 24)
    assert fires == hourly(utc(2026, 3, 8, 5), 24)
    labels = local_labels(fires, NY)
    assert labels[:4] == ["00:00 EST", "01:00 EST", "03:00 EDT", "04:00 EDT"]
    assert "02:00 EST" not in labels
    assert "02:00 EDT" not in labels


def test_ny_spring_forward_next_fire_from_just_before_the_gap() -> None:
    assert next_cron_fire("0 * * * *", NY, utc(2026, 3, 8, 6)) == utc(2026, 3, 8, 7)
    assert next_cron_fire("30 2 * * *", NY, utc(2026, 3, 8, 6, 59)) == utc(2026, 3, 8, 7)
    assert next_cron_fire("30 2 * * *", NY, utc(2026, 3, 8, 7)) == utc(2026, 3, 9, 6, 30)


def test_ny_normal_days_control() -> None:
    assert cron_fires("30 1 * * *", NY, utc(2026, 6, 10), 2) == [
        utc(2026, 6, 10, 5, 30),
        utc(2026, 6, 11, 5, 30),
    ]
    assert next_cron_fire("30 1 * * *", NY, utc(2026, 1, 10)) == utc(2026, 1, 10, 6, 30)
    fires = cron_fires("0 * * * *", NY, utc(2026, 6, 10, 3, 30), 24)
    assert fires == hourly(utc(2026, 6, 10, 4), 24)
    assert [f.astimezone(ZoneInfo(NY)).hour for f in fires] == list(range(24))


# --- Berlin, both transitions ------------------------------------------------------------------


def test_berlin_spring_forward_daily_in_skipped_hour_fires_at_the_jump() -> None:
    fires = cron_fires("30 2 * * *", BERLIN, utc(2026, 3, 27, 12), 3)
    assert fires == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    assert local_labels(fires, BERLIN) == ["02:30 CET", "03:00 CEST", "02:30 CEST"]


def test_berlin_fall_back_daily_in_repeated_hour_fires_once() -> None:
    fires = cron_fires("30 2 * * *", BERLIN, utc(2026, 10, 23, 12), 3)
    assert fires == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert local_labels(fires, BERLIN) == ["02:30 CEST", "02:30 CEST", "02:30 CET"]
    # From inside the second (CET) copy of 02:xx the next fire is the following day.
    after = utc(2026, 10, 25, 1, 10)
    assert next_cron_fire("30 2 * * *", BERLIN, after) == utc(2026, 10, 26, 1, 30)


def test_berlin_spring_forward_hourly_fires_every_real_hour() -> None:
    fires = cron_fires("0 * * * *", BERLIN, utc(2026, 3, 28, 22, 30), 24)
    assert fires == hourly(utc(2026, 3, 28, 23), 24)
    assert local_labels(fires, BERLIN)[:4] == ["00:00 CET", "01:00 CET", "03:00 CEST", "04:00 CEST"]


def test_berlin_fall_back_hourly_fires_every_real_hour() -> None:
    fires = cron_fires("0 * * * *", BERLIN, utc(2026, 10, 24, 21, 30), 24)
    assert fires == hourly(utc(2026, 10, 24, 22), 24)
    assert local_labels(fires, BERLIN)[:5] == [
        "00:00 CEST",
        "01:00 CEST",
        "02:00 CEST",
        "02:00 CET",
        "03:00 CET",
    ]


def test_berlin_normal_day_control() -> None:
    assert next_cron_fire("30 2 * * *", BERLIN, utc(2026, 7, 1)) == utc(2026, 7, 1, 0, 30)
    assert next_cron_fire("30 2 * * *", BERLIN, utc(2026, 12, 1)) == utc(2026, 12, 1, 1, 30)


def test_half_hour_dst_shift_in_lord_howe() -> None:
    # Australia/Lord_Howe jumps 02:00 -> 02:30 (+10:30 -> +11:00) on 2026-10-04.
    fires = cron_fires("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 2), 3)
    assert fires == [utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)]


@pytest.mark.parametrize("tz", [NY, BERLIN, "Australia/Sydney", "UTC"])
def test_daily_fixed_hour_job_fires_exactly_once_per_local_day_for_a_year(tz: str) -> None:
    zone = ZoneInfo(tz)
    for expr in ("30 1 * * *", "30 2 * * *", "0 3 * * *"):
        fires = cron_fires(expr, tz, utc(2026, 1, 1), 365)
        days = [f.astimezone(zone).date() for f in fires]
        assert len(set(days)) == 365
        assert all(a < b for a, b in itertools.pairwise(fires))


@pytest.mark.parametrize("tz", [NY, BERLIN, "Australia/Sydney"])
def test_hourly_job_is_exactly_one_real_hour_apart_for_a_year(tz: str) -> None:
    fires = cron_fires("0 * * * *", tz, utc(2026, 1, 1), 365 * 24)
    assert fires == hourly(utc(2026, 1, 1, 1), 365 * 24)


# --- 6-field (seconds last) expressions ---------------------------------------------------------


def test_six_fields_seconds_step_every_two_seconds() -> None:
    assert cron_fires("* * * * * */2", "UTC", utc(2026, 1, 1, 12), 3) == [
        utc(2026, 1, 1, 12, 0, 2),
        utc(2026, 1, 1, 12, 0, 4),
        utc(2026, 1, 1, 12, 0, 6),
    ]
    after = datetime(2026, 1, 1, 12, 0, 1, 500_000, tzinfo=UTC)
    assert next_cron_fire("* * * * * */2", "UTC", after) == utc(2026, 1, 1, 12, 0, 2)


def test_six_fields_first_field_is_minutes_not_seconds() -> None:
    # The 6th field is seconds, so '*/2 * * * * *' is every second of every even minute.
    assert cron_fires("*/2 * * * * *", "UTC", utc(2026, 1, 1, 0, 0, 58), 3) == [
        utc(2026, 1, 1, 0, 0, 59),
        utc(2026, 1, 1, 0, 2, 0),
        utc(2026, 1, 1, 0, 2, 1),
    ]
    # ... and '0 */5 * * * *' is every second of minute 0 of hours 0, 5, 10, 15, 20.
    assert cron_fires("0 */5 * * * *", "UTC", utc(2026, 1, 1, 0, 0, 58), 3) == [
        utc(2026, 1, 1, 0, 0, 59),
        utc(2026, 1, 1, 5, 0, 0),
        utc(2026, 1, 1, 5, 0, 1),
    ]


def test_six_fields_fixed_second() -> None:
    assert cron_fires("*/5 * * * * 0", "UTC", utc(2026, 1, 1, 12, 3, 10), 2) == [
        utc(2026, 1, 1, 12, 5),
        utc(2026, 1, 1, 12, 10),
    ]
    assert next_cron_fire("0 9 * * * 30", BERLIN, utc(2026, 1, 1)) == utc(2026, 1, 1, 8, 0, 30)


def test_six_fields_dst_rules_apply() -> None:
    # Wildcard hour: real time, both copies of the repeated hour.
    fires = cron_fires("0 * * * * 30", NY, utc(2026, 11, 1, 4, 30), 3)
    assert fires == [
        utc(2026, 11, 1, 5, 0, 30),
        utc(2026, 11, 1, 6, 0, 30),
        utc(2026, 11, 1, 7, 0, 30),
    ]
    # Fixed hour, every second inside the skipped hour: one fire at the jump.
    fires = cron_fires("* 2 * * * *", NY, utc(2026, 3, 8), 3)
    assert fires == [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 0, 0), utc(2026, 3, 9, 6, 0, 1)]


# --- general cron behaviour ---------------------------------------------------------------------


def test_next_cron_fire_is_strictly_after() -> None:
    assert next_cron_fire("* * * * *", "UTC", utc(2026, 1, 1, 12, 1)) == utc(2026, 1, 1, 12, 2)
    after = datetime(2026, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    assert next_cron_fire("* * * * *", "UTC", after) == utc(2026, 1, 1, 12, 1)


def test_next_cron_fire_returns_utc_and_accepts_other_aware_offsets() -> None:
    after = datetime(2026, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=2)))  # 05:00 UTC
    fire = next_cron_fire("30 * * * *", "UTC", after)
    assert fire == utc(2026, 1, 1, 5, 30)
    assert fire.tzinfo is UTC


def test_aliases_and_day_of_week_or_day_of_month() -> None:
    assert next_cron_fire("@hourly", "UTC", utc(2026, 1, 1, 0, 30)) == utc(2026, 1, 1, 1)
    assert next_cron_fire("@daily", NY, utc(2026, 1, 1, 12)) == utc(2026, 1, 2, 5)
    assert next_cron_fire("@weekly", "UTC", utc(2026, 1, 1)) == utc(2026, 1, 4)  # a Sunday
    assert next_cron_fire("@monthly", "UTC", utc(2026, 1, 1)) == utc(2026, 2, 1)
    assert next_cron_fire("@yearly", "UTC", utc(2026, 1, 1)) == utc(2027, 1, 1)
    # Vixie semantics: a restricted day-of-month and day-of-week are OR-ed, so "the 31st of
    # February or any Monday in February" is valid and fires on Mondays.
    assert next_cron_fire("0 0 31 2 1", "UTC", utc(2026, 1, 1)) == utc(2026, 2, 2)


def test_cron_fires_count() -> None:
    fires = cron_fires("*/10 * * * *", "UTC", utc(2026, 1, 1, 0, 5), 5)
    assert fires == [utc(2026, 1, 1, 0, m) for m in (10, 20, 30, 40, 50)]
    assert cron_fires("*/10 * * * *", "UTC", utc(2026, 1, 1), 0) == []
    with pytest.raises(ValueError, match="count"):
        cron_fires("*/10 * * * *", "UTC", utc(2026, 1, 1), -1)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * *", "cron: expected 5 fields, or 6 with seconds last; got 3"),
        ("garbage", "cron: expected 5 fields, or 6 with seconds last; got 1"),
        ("* * * * * * *", "cron: expected 5 fields, or 6 with seconds last; got 7"),
        ("", "cron: expression is empty"),
        ("   ", "cron: expression is empty"),
        ("61 * * * *", "cron: bad minute field '61' (not acceptable, out of range)"),
        ("0 24 * * *", "cron: bad hour field '24' (not acceptable, out of range)"),
        ("0 0 * 13 *", "cron: bad month field '13' (not acceptable, out of range)"),
        ("0 0 * * * 60", "cron: bad second field '60' (not acceptable, out of range)"),
        ("a b c d e", "cron: bad minute field 'a' (not acceptable)"),
        ("*/0 * * * *", "cron: bad minute field '*/0' (step '0' in field 0 is not acceptable)"),
    ],
)
def test_validate_cron_errors(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_cron(expr)
    assert info.value.field == "cron"
    assert str(info.value) == message
    assert info.value.message == message


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 0 30 2 *", "can never occur"),
        ("R * * * *", "hashed/random values are not supported"),
        ("H H * * *", "hashed/random values are not supported"),
        ("@fortnightly", "unknown alias '@fortnightly'"),
        ("0 0 * * 1#6", "bad day-of-week field '1#6'"),
        ("0 12 * * foo", "bad day-of-week field 'foo'"),
    ],
)
def test_validate_cron_other_errors(expr: str, fragment: str) -> None:
    with pytest.raises(ScheduleError, match=fragment) as info:
        validate_cron(expr)
    assert info.value.field == "cron"


def test_schedule_error_is_a_value_error() -> None:
    error = ScheduleError("cron", "cron: nope")
    assert isinstance(error, ValueError)
    assert (error.field, error.message, str(error)) == ("cron", "cron: nope", "cron: nope")


@pytest.mark.parametrize(
    ("expr", "normalised"),
    [
        ("  */5   *  * *\t*\n", "*/5 * * * *"),
        ("0 9 * * MON-FRI", "0 9 * * MON-FRI"),
        ("* * * * * */2", "* * * * * */2"),
        ("@Daily", "@daily"),
        (" @hourly ", "@hourly"),
        ("@yearly", "@yearly"),
        ("0 0 L * *", "0 0 L * *"),
    ],
)
def test_validate_cron_normalises(expr: str, normalised: str) -> None:
    assert validate_cron(expr) == normalised


def test_validate_timezone() -> None:
    assert validate_timezone(BERLIN) == ZoneInfo(BERLIN)
    assert validate_timezone("UTC").key == "UTC"
    with pytest.raises(ScheduleError) as info:
        validate_timezone("Mars/Base")
    assert info.value.field == "timezone"
    assert str(info.value) == "unknown timezone 'Mars/Base'"


@pytest.mark.parametrize("name", ["", "America", "../etc/passwd", "/etc/localtime", "utc"])
def test_validate_timezone_rejects_odd_names(name: str) -> None:
    with pytest.raises(ScheduleError, match="unknown timezone") as info:
        validate_timezone(name)
    assert info.value.field == "timezone"


def test_cron_functions_validate_their_inputs() -> None:
    with pytest.raises(ScheduleError) as info:
        next_cron_fire("0 0 * * *", "Mars/Base", utc(2026, 1, 1))
    assert info.value.field == "timezone"
    with pytest.raises(ScheduleError) as info:
        cron_fires("0 0 *", "UTC", utc(2026, 1, 1), 1)
    assert info.value.field == "cron"


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 1, 1, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_cron_fire("* * * * *", "UTC", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        cron_fires("* * * * *", "UTC", naive, 2)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_interval_fire(60, naive, utc(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_interval_fire(60, utc(2026, 1, 1), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        collapse_misfires([], naive, "skip", 60)
    with pytest.raises(ValueError, match="timezone-aware"):
        collapse_misfires([naive], utc(2026, 1, 1, 12), "skip", 60)


# --- intervals ----------------------------------------------------------------------------------


def test_interval_anchor_in_future_is_the_first_fire() -> None:
    anchor = utc(2026, 1, 1, 12)
    assert next_interval_fire(300, anchor, utc(2026, 1, 1, 11, 59, 59)) == anchor


def test_interval_exact_boundary_gives_the_next_one() -> None:
    anchor = utc(2026, 1, 1, 12)
    assert next_interval_fire(300, anchor, anchor) == utc(2026, 1, 1, 12, 5)
    assert next_interval_fire(300, anchor, utc(2026, 1, 1, 12, 15)) == utc(2026, 1, 1, 12, 20)


def test_interval_between_fires() -> None:
    anchor = utc(2026, 1, 1, 12)
    assert next_interval_fire(300, anchor, utc(2026, 1, 1, 12, 12, 30)) == utc(2026, 1, 1, 12, 15)


def test_interval_fractional_seconds_are_exact() -> None:
    anchor = utc(2026, 1, 1, 12)
    after = datetime(2026, 1, 1, 12, 0, 1, 100_000, tzinfo=UTC)
    expected = datetime(2026, 1, 1, 12, 0, 1, 250_000, tzinfo=UTC)
    assert next_interval_fire(0.25, anchor, after) == expected
    # 3 * 0.1 != 0.3 in floating point; the boundary must still be exact.
    at_third = datetime(2026, 1, 1, 12, 0, 0, 300_000, tzinfo=UTC)
    expected = datetime(2026, 1, 1, 12, 0, 0, 400_000, tzinfo=UTC)
    assert next_interval_fire(0.1, anchor, at_third) == expected


def test_interval_far_from_anchor() -> None:
    anchor = utc(2026, 1, 1)
    # 365 days = 31_536_000 s = 7 * 4_505_142 s + 6 s, so the next multiple is 1 s later.
    fire = next_interval_fire(7, anchor, utc(2027, 1, 1))
    assert fire == utc(2027, 1, 1, 0, 0, 1)
    assert fire.tzinfo is UTC


def test_interval_ignores_dst() -> None:
    anchor = utc(2026, 11, 1, 5, 30)  # 01:30 EDT; an interval is real time, no wall clock
    assert next_interval_fire(3600, anchor, anchor) == utc(2026, 11, 1, 6, 30)


@pytest.mark.parametrize("every", [0, -5, 0.0, float("nan"), float("inf"), 1e-9])
def test_interval_must_be_positive(every: float) -> None:
    with pytest.raises(ScheduleError) as info:
        next_interval_fire(every, utc(2026, 1, 1), utc(2026, 1, 2))
    assert info.value.field == "every_seconds"
    with pytest.raises(ScheduleError):
        describe_interval(every)


# --- descriptions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "text"),
    [
        ("* * * * *", "UTC", "every minute"),
        ("* * * * * *", "UTC", "every second"),
        ("* * * * * */2", "UTC", "every 2 seconds"),
        ("*/15 * * * *", "UTC", "every 15 minutes"),
        ("5 * * * *", "UTC", "every hour at :05"),
        ("0 */2 * * *", "UTC", "every 2 hours"),
        ("15 */6 * * *", "UTC", "every 6 hours at :15"),
        ("0 6 * * *", "UTC", "every day at 06:00"),
        ("0 6 * * *", "Europe/Paris", "every day at 06:00 (Europe/Paris)"),
        ("0 6 * * * 30", "UTC", "every day at 06:00:30"),
        ("0 6 * * 1-5", "UTC", "at 06:00 on Monday to Friday"),
        ("0 6 * * MON-FRI", "Europe/Paris", "at 06:00 on Monday to Friday (Europe/Paris)"),
        ("0 8 * * mon,wed,fri", "UTC", "at 08:00 on Monday, Wednesday and Friday"),
        ("0 8 * * 6,0", "UTC", "at 08:00 on Saturday and Sunday"),
        ("30 9 1 * *", "UTC", "at 09:30 on the 1st of every month"),
        ("30 9 22 * *", "UTC", "at 09:30 on the 22nd of every month"),
        ("30 9 13 * *", "UTC", "at 09:30 on the 13th of every month"),
        ("0 8 * * 1", "UTC", "every Monday at 08:00"),
        ("0 8 * * 7", "UTC", "every Sunday at 08:00"),
        ("@hourly", "UTC", "every hour at :00"),
        ("@daily", NY, "every day at 00:00 (America/New_York)"),
        ("@weekly", "UTC", "every Sunday at 00:00"),
        ("@monthly", "UTC", "at 00:00 on the 1st of every month"),
        ("@yearly", "UTC", "at 00:00 on 1 January"),
    ],
)
def test_describe_cron(expr: str, tz: str, text: str) -> None:
    assert describe_cron(expr, tz) == text


@pytest.mark.parametrize(
    ("expr", "tz", "text"),
    [
        ("*/7 * * * *", "UTC", "cron '*/7 * * * *'"),
        ("0 0 L * *", "UTC", "cron '0 0 L * *'"),
        ("0 0 15W * *", "UTC", "cron '0 0 15W * *'"),
        ("0 0 * * 5#2", "UTC", "cron '0 0 * * 5#2'"),
        ("0 9,17 * * *", "UTC", "cron '0 9,17 * * *'"),
        ("0  */5 * * * *", "UTC", "cron '0 */5 * * * *'"),
        ("0 0 1,15 * *", "Europe/Paris", "cron '0 0 1,15 * *' (Europe/Paris)"),
    ],
)
def test_describe_cron_fallback(expr: str, tz: str, text: str) -> None:
    assert describe_cron(expr, tz) == text


def test_describe_cron_validates() -> None:
    with pytest.raises(ScheduleError) as info:
        describe_cron("0 0 *", "UTC")
    assert info.value.field == "cron"
    with pytest.raises(ScheduleError) as info:
        describe_cron("0 0 * * *", "Mars/Base")
    assert info.value.field == "timezone"


@pytest.mark.parametrize(
    ("every", "text"),
    [
        (1, "every second"),
        (30, "every 30 seconds"),
        (60, "every minute"),
        (90, "every 90 seconds"),
        (300, "every 5 minutes"),
        (3600, "every hour"),
        (5400, "every 90 minutes"),
        (7200, "every 2 hours"),
        (86400, "every day"),
        (172800, "every 2 days"),
        (604800, "every week"),
        (1209600, "every 2 weeks"),
        (0.5, "every 0.5 seconds"),
        (2.5, "every 2.5 seconds"),
        (300.0, "every 5 minutes"),
    ],
)
def test_describe_interval(every: float, text: str) -> None:
    assert describe_interval(every) == text


# --- misfires -----------------------------------------------------------------------------------

NOW = utc(2026, 1, 1, 12, 30)
MISSED = [utc(2026, 1, 1, 10), utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)]


def test_misfires_run_once_runs_only_the_latest_missed_fire() -> None:
    assert collapse_misfires(MISSED, NOW, "run_once", 60) == ([MISSED[-1]], MISSED[:2])


def test_misfires_skip_runs_none_of_the_missed_fires() -> None:
    assert collapse_misfires(MISSED, NOW, "skip", 60) == ([], MISSED)


@pytest.mark.parametrize("policy", ["run_once", "skip"])
def test_misfires_within_grace_always_run(policy: Literal["run_once", "skip"]) -> None:
    late = utc(2026, 1, 1, 12, 29, 30)
    assert collapse_misfires([late], NOW, policy, 60) == ([late], [])
    # Exactly at the grace boundary still counts as on time.
    edge = utc(2026, 1, 1, 12, 29)
    assert collapse_misfires([edge], NOW, policy, 60) == ([edge], [])


def test_misfires_mixed_missed_and_on_time() -> None:
    late = utc(2026, 1, 1, 12, 29, 30)
    fires = [*MISSED, late]
    assert collapse_misfires(fires, NOW, "run_once", 60) == ([MISSED[-1], late], MISSED[:2])
    assert collapse_misfires(fires, NOW, "skip", 60) == ([late], MISSED)


def test_misfires_zero_grace_and_empty_input() -> None:
    assert collapse_misfires([], NOW, "run_once", 60) == ([], [])
    assert collapse_misfires([NOW], NOW, "skip", 0) == ([NOW], [])
    just_before = NOW - timedelta(microseconds=1)
    assert collapse_misfires([just_before], NOW, "skip", 0) == ([], [just_before])


def test_misfires_does_not_mutate_its_input() -> None:
    fires = list(MISSED)
    collapse_misfires(fires, NOW, "run_once", 60)
    assert fires == MISSED


def test_misfires_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="policy"):
        collapse_misfires(MISSED, NOW, "catch_up", 60)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grace_seconds"):
        collapse_misfires(MISSED, NOW, "skip", -1)
    with pytest.raises(ValueError, match="ascending"):
        collapse_misfires(list(reversed(MISSED)), NOW, "skip", 60)
    with pytest.raises(ValueError, match="later than now"):
        collapse_misfires([utc(2026, 1, 1, 13)], NOW, "skip", 60)
