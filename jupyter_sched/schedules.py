"""Fire-time arithmetic for cron and interval schedules.

Everything here is pure: the current time is always passed in, never read from the clock, and
every datetime crossing the API is timezone-aware (returned values are always in UTC).

Cron expressions are evaluated on the local wall clock of the schedule's timezone with the
daylight-saving rules Vixie cron users expect:

* A job whose hour field covers every hour (``*``, ``*/1``, ``0-23``) runs in real time: it
  fires at every instant whose local wall-clock time matches, so an hourly job fires in both
  copies of a repeated hour and simply has no fire in a skipped hour.
* A job at fixed hours fires once per wall-clock match: in a repeated hour it fires at the
  first occurrence only, and a time inside a skipped hour fires once, at the moment the clock
  jumps forward.
"""

import functools
import itertools
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# croniter is imported by the functions that use it: wording an interval or a stored
# trigger (`jupyter sched jobs list`) does not need it.

_ALIASES = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}  # fmt: skip
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week", "second")
# croniter's H (hashed) and R (random) values need a hash id or make the schedule
# non-deterministic; neither fits a persisted, reproducible schedule.
_HASH_OR_RANDOM = re.compile(r"^[hr](\(|/|$)", re.IGNORECASE)
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
#: The months' names, January first.
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_ONE_SECOND = timedelta(seconds=1)
# Probe step when searching for UTC-offset transitions; real zones never change offset
# twice within a day.
_PROBE_STEP = timedelta(days=1)

Policy = Literal["run_once", "skip"]


class ScheduleError(ValueError):
    """An invalid cron expression, timezone or interval.

    ``field`` names the offending input ('cron', 'timezone' or 'every_seconds') and the
    exception message is meant to be shown to a human.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def validate_cron(expr: str) -> str:
    """Validate a cron expression and return it with normalised whitespace.

    Accepts 5 fields (minute hour day-of-month month day-of-week), 6 fields where the 6th is
    seconds (croniter's convention), or one of the aliases ``@hourly``, ``@daily``,
    ``@weekly``, ``@monthly``, ``@yearly``, ``@annually`` and ``@midnight``.

    Raises:
        ScheduleError: with ``field == 'cron'`` if the expression is invalid.
    """
    if not isinstance(expr, str):
        raise ScheduleError("cron", f"cron: expected a string, got {type(expr).__name__}")
    fields = expr.split()
    if not fields:
        raise ScheduleError("cron", "cron: expression is empty")
    if len(fields) == 1 and fields[0].startswith("@"):
        alias = fields[0].lower()
        if alias not in _ALIASES:
            known = ", ".join(sorted(_ALIASES))
            raise ScheduleError(
                "cron", f"cron: unknown alias {fields[0]!r}; expected one of {known}"
            )
        return alias
    if len(fields) not in (5, 6):
        raise ScheduleError(
            "cron", f"cron: expected 5 fields, or 6 with seconds last; got {len(fields)}"
        )
    for name, field in zip(_FIELD_NAMES, fields, strict=False):
        if any(_HASH_OR_RANDOM.match(item) for item in field.split(",")):
            raise ScheduleError(
                "cron", f"cron: {name} field {field!r}: hashed/random values are not supported"
            )
    normalised = " ".join(fields)
    reason = _expand_error(normalised)
    if reason is not None:
        for index, field in enumerate(fields):
            alone = ["*"] * len(fields)
            alone[index] = field
            field_reason = _expand_error(" ".join(alone))
            if field_reason is not None:
                name = _FIELD_NAMES[index]
                raise ScheduleError("cron", f"cron: bad {name} field {field!r} ({field_reason})")
        raise ScheduleError("cron", f"cron: {reason}")
    return normalised


@functools.lru_cache(maxsize=1024)
def _expand_error(expr: str) -> str | None:
    """Return croniter's reason for rejecting ``expr``, or None if it is valid (cached: each
    next fire validates its expression, and expanding it costs more than finding the fire)."""
    from croniter import croniter

    fields = expr.split()
    # strict mode rejects day/month combinations that can never occur (Feb 30), which would
    # otherwise make croniter give up at iteration time; with a day-of-week restriction the
    # days are OR-ed, so the combination may still fire and must not be rejected.
    strict = fields[4] in ("*", "?")
    try:
        croniter.expand(expr, strict=strict)
    except (ValueError, TypeError, KeyError) as exc:
        # croniter sometimes wraps a whole traceback (the last line is the reason) and
        # prefixes the expression itself, which the caller already reports.
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        message = lines[-1]
        for prefix in (f"[{expr}] is ", f"[{expr}] ", f"{expr} is ", f"{expr} "):
            if message.startswith(prefix):
                return message[len(prefix) :]
        return message
    return None


def validate_timezone(name: str) -> ZoneInfo:
    """Return the ``ZoneInfo`` for an IANA timezone name such as ``'Europe/Paris'``.

    Raises:
        ScheduleError: with ``field == 'timezone'`` if the name is unknown.
    """
    if not isinstance(name, str) or not name:
        raise ScheduleError("timezone", f"unknown timezone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise ScheduleError("timezone", f"unknown timezone {name!r}") from None


def _as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _offset(zone: tzinfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset for an aware instant
    return offset


def _next_transition(zone: tzinfo, start: datetime, limit: datetime) -> datetime | None:
    """First instant in (start, limit] whose UTC offset differs from start's, or None."""
    offset = _offset(zone, start)
    probe = start
    while probe < limit:
        nxt = min(probe + _PROBE_STEP, limit)
        if _offset(zone, nxt) != offset:
            # Transitions happen on whole seconds, so bisect over integer timestamps.
            lo, hi = math.floor(probe.timestamp()), math.floor(nxt.timestamp())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(zone, datetime.fromtimestamp(mid, UTC)) == offset:
                    lo = mid
                else:
                    hi = mid
            return datetime.fromtimestamp(hi, UTC)
        probe = nxt
    return None


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _fixed_wall_to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """Map a naive wall time to UTC: first occurrence if repeated, the jump if skipped."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    # For a wall time in a gap, fold=1 applies the post-transition offset and lands before
    # the jump while fold=0 lands after it, so the jump lies between the two.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    jump = _next_transition(zone, before, first)
    assert jump is not None
    return jump


def _iter_fixed_hours(expr: str, zone: tzinfo, after: datetime) -> Iterator[datetime]:
    from croniter import croniter

    # The wall->UTC mapping above is non-decreasing in wall time, so walking croniter over
    # wall times and dropping anything not strictly later yields fires in real-time order.
    it = croniter(expr, _wall(after, zone))
    last = after
    while True:
        wall = it.get_next(datetime)
        fire = _fixed_wall_to_utc(wall, zone)
        if fire > last:
            last = fire
            yield fire
        if _wall(fire, zone) != wall:
            # The wall time was in a gap; skip the rest of the gap rather than collapsing
            # (possibly thousands of) further wall times onto the same jump one by one.
            it.set_current(_wall(fire, zone) - _ONE_SECOND)


def _iter_every_hour(expr: str, zone: tzinfo, after: datetime) -> Iterator[datetime]:
    from croniter import croniter

    # Walk real time one constant-offset segment at a time: inside a segment wall time is a
    # shift of UTC, so croniter's next wall time maps straight to the next real fire.
    start, offset = after, _offset(zone, after)
    it = croniter(expr, _wall(after, zone))
    while True:
        fire = it.get_next(datetime).replace(tzinfo=UTC) - offset
        transition = _next_transition(zone, start, fire)
        if transition is None:
            yield fire
            start = fire
        else:
            # Restart in the new segment, one second early so that the segment's first wall
            # time is itself a candidate (cron has one-second resolution).
            start, offset = transition, _offset(zone, transition)
            it = croniter(expr, _wall(transition, zone) - _ONE_SECOND)


@functools.lru_cache(maxsize=1024)
def _covers_every_hour(expr: str) -> bool:
    from croniter import croniter

    expanded, _ = croniter.expand(expr)
    return bool(expanded[1] == ["*"])


def _iter_fires(expr: str, tz: str, after: datetime) -> Iterator[datetime]:
    normalised = validate_cron(expr)
    zone = validate_timezone(tz)
    start = _as_utc(after, "after")
    if _covers_every_hour(normalised):
        return _iter_every_hour(normalised, zone, start)
    return _iter_fixed_hours(normalised, zone, start)


def next_cron_fire(expr: str, tz: str, after: datetime) -> datetime:
    """Return the first fire of cron ``expr`` in timezone ``tz`` strictly after ``after``.

    ``after`` must be timezone-aware; the result is timezone-aware UTC. See the module
    docstring for the daylight-saving rules.
    """
    return next(_iter_fires(expr, tz, after))


def iter_cron_fires(expr: str, tz: str, after: datetime) -> Iterator[datetime]:
    """The fires of ``expr`` strictly after ``after``, ascending (UTC), from one walk of
    the schedule: much cheaper than :func:`next_cron_fire` once per fire."""
    return _iter_fires(expr, tz, after)


def cron_fires(expr: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """Return the next ``count`` fires of ``expr`` strictly after ``after`` (ascending, UTC)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    fires = _iter_fires(expr, tz, after)
    return [next(fires) for _ in range(count)]


def _interval_microseconds(every_seconds: float) -> int:
    if isinstance(every_seconds, bool) or not isinstance(every_seconds, int | float):
        raise ScheduleError("every_seconds", "every_seconds must be a number")
    if not math.isfinite(every_seconds) or every_seconds <= 0:
        raise ScheduleError(
            "every_seconds", f"every_seconds must be a positive number, got {every_seconds!r}"
        )
    micros = round(every_seconds * 1_000_000)
    if micros < 1:
        raise ScheduleError("every_seconds", "every_seconds must be at least one microsecond")
    return micros


def next_interval_fire(every_seconds: float, anchor: datetime, after: datetime) -> datetime:
    """Return the first ``anchor + k * every_seconds`` (integer k >= 0) strictly after ``after``.

    If ``after`` is before ``anchor`` the answer is ``anchor`` itself. The interval is
    rounded to whole microseconds and the arithmetic is exact in microseconds.

    Raises:
        ScheduleError: with ``field == 'every_seconds'`` if the interval is not positive.
    """
    every = _interval_microseconds(every_seconds)
    anchor_utc, after_utc = _as_utc(anchor, "anchor"), _as_utc(after, "after")
    if after_utc < anchor_utc:
        return anchor_utc
    elapsed = (after_utc - anchor_utc) // timedelta(microseconds=1)
    steps = elapsed // every + 1
    return anchor_utc + timedelta(microseconds=steps * every)


def _plural(count: int | float, unit: str) -> str:
    if count == 1:
        return f"every {unit}"
    text = str(int(count)) if float(count).is_integer() else str(count)
    return f"every {text} {unit}s"


def describe_interval(every_seconds: float) -> str:
    """Describe an interval in plain English, e.g. ``'every 5 minutes'`` or ``'every day'``.

    Uses the largest unit (week, day, hour, minute) that divides the interval exactly and
    falls back to seconds, so 90 seconds is ``'every 90 seconds'``.
    """
    micros = _interval_microseconds(every_seconds)
    if micros % 1_000_000:
        return _plural(micros / 1_000_000, "second")
    seconds = micros // 1_000_000
    for unit, size in (("week", 604_800), ("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            return _plural(seconds // size, unit)
    return _plural(seconds, "second")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _step(values: list[int | str], size: int) -> int | None:
    """The step n if ``values`` is exactly 0, n, 2n, ... covering a field of ``size`` evenly."""
    if values == ["*"]:
        return 1
    if len(values) < 2 or values[0] != 0 or not all(isinstance(v, int) for v in values):
        return None
    step = int(values[1])
    if size % step or values != list(range(0, size, step)):
        return None
    return step


def _single(values: list[int | str]) -> int | None:
    if len(values) == 1 and isinstance(values[0], int):
        return values[0]
    return None


def _days_phrase(days: list[int]) -> str:
    # croniter sorts Sunday (0) first; read weeks Monday-first like people do.
    days = sorted(days, key=lambda d: (d - 1) % 7)
    names = [_DAY_NAMES[d] for d in days]
    contiguous = all((b - a) % 7 == 1 for a, b in itertools.pairwise(days))
    if len(days) > 2 and contiguous:
        return f"{names[0]} to {names[-1]}"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _describe_fields(expanded: list[list[int | str]]) -> str | None:
    minute, hour, dom, month, dow = expanded[:5]
    second: list[int | str] = expanded[5] if len(expanded) > 5 else [0]
    sec, mins, hr = _single(second), _single(minute), _single(hour)
    daily = dom == month == dow == ["*"]
    if daily and minute == hour == ["*"]:
        if sec == 0:
            return "every minute"
        n = _step(second, 60)
        return None if n is None else _plural(n, "second")
    if daily and hr is None and sec == 0:
        if hour == ["*"]:
            if mins is not None:
                return f"every hour at :{mins:02d}"
            n = _step(minute, 60)
            return None if n is None else _plural(n, "minute")
        n = _step(hour, 24)
        if n is None or mins is None:
            return None
        return _plural(n, "hour") + ("" if mins == 0 else f" at :{mins:02d}")
    if mins is None or hr is None or sec is None:
        return None
    clock = f"{hr:02d}:{mins:02d}" + (f":{sec:02d}" if sec else "")
    if daily:
        return f"every day at {clock}"
    if dom == month == ["*"] and all(isinstance(d, int) for d in dow):
        days = [int(d) for d in dow]
        if len(days) == 1:
            return f"every {_DAY_NAMES[days[0]]} at {clock}"
        return f"at {clock} on {_days_phrase(days)}"
    day_of_month, month_number = _single(dom), _single(month)
    if dow == ["*"] and day_of_month is not None:
        if month == ["*"]:
            return f"at {clock} on the {_ordinal(day_of_month)} of every month"
        if month_number is not None:
            return f"at {clock} on {day_of_month} {MONTH_NAMES[month_number - 1]}"
    return None


def describe_cron(expr: str, tz: str) -> str:
    """Describe a cron schedule in plain English, e.g. ``'at 06:00 on Monday to Friday'``.

    Common shapes get a sentence; anything else falls back to ``"cron '<expr>'"``. A
    ``' (<tz>)'`` suffix is added unless ``tz`` is ``'UTC'``.
    """
    from croniter import croniter

    normalised = validate_cron(expr)
    validate_timezone(tz)
    suffix = "" if tz == "UTC" else f" ({tz})"
    fields = _ALIASES.get(normalised, normalised).split()
    expanded, nth_weekday = croniter.expand(normalised)
    # Last-day (L), nearest-weekday (W) and nth-weekday (#) forms have no sentence here;
    # croniter's expansion drops the W marker, so look at the raw day-of-month field.
    special = bool(nth_weekday) or any(c in fields[2].lower() for c in "lw")
    text = None if special else _describe_fields(expanded)
    return (text if text is not None else f"cron '{normalised}'") + suffix


def collapse_misfires(
    fires_due: list[datetime], now: datetime, policy: Policy, grace_seconds: float
) -> tuple[list[datetime], list[datetime]]:
    """Split due fire times into ``(to_run, missed)``.

    ``fires_due`` must be strictly ascending and not later than ``now``. A fire is missed
    when ``now - fire > grace_seconds``; fires within the grace period always run. Of the
    missed fires, ``'run_once'`` runs the latest one (the rest are reported as missed) and
    ``'skip'`` runs none of them. Both returned lists are ascending.
    """
    if policy not in ("run_once", "skip"):
        raise ValueError(f"policy must be 'run_once' or 'skip', got {policy!r}")
    if math.isnan(grace_seconds) or grace_seconds < 0:
        raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds!r}")
    now_utc = _as_utc(now, "now")
    fires = [_as_utc(fire, "fires_due item") for fire in fires_due]
    for earlier, later in itertools.pairwise(fires):
        if later <= earlier:
            raise ValueError("fires_due must be strictly ascending")
    if fires and fires[-1] > now_utc:
        raise ValueError(f"fire {fires[-1].isoformat()} is later than now {now_utc.isoformat()}")
    missed = [fire for fire in fires if (now_utc - fire).total_seconds() > grace_seconds]
    on_time = fires[len(missed) :]
    if policy == "run_once" and missed:
        return [missed[-1], *on_time], missed[:-1]
    return on_time, missed
