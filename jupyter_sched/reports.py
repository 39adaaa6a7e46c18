"""Report builders' tools: runs' logical dates, sweeps, batches, backfills and summaries.

A *batch* is the runs made together by one fire, run-now or backfill of a job: a sweep
job makes one run per parameter set, a backfill one run per fire of the schedule in a
range (times the sets, for a sweep job). Runs of a batch share its id and a chain (so
``after`` jobs follow the batch once, see :mod:`jupyter_sched.workflows`), and at most its
``max_parallel`` are handed to workers at once (see :func:`jupyter_sched.dispatch.dispatch`).

No web framework here: the service calls these with a session and ``now``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import InvalidInput
from .models import Batch, Job, Run, new_id
from .notebooks import check_parameters
from .schemas import NotebookParameter
from .statuses import FAILURE_STATUSES, FINAL_STATUSES
from .triggers import iter_fires
from .workflows import SCHEDULED_FOR_PARAMETER

#: Trigger kinds whose fires a backfill can replay.
SCHEDULED_KINDS = ("cron", "interval", "once")
#: Fires counted one by one, per fire a backfill may make, before a range is said to hold
#: "more than" that many (counting a century of minutes would hold a request for minutes).
COUNT_FACTOR = 5


def job_timezone(trigger: dict[str, Any] | None) -> ZoneInfo:
    """The timezone a job's dates are shown in: its cron trigger's, else UTC."""
    name = (trigger or {}).get("timezone") if (trigger or {}).get("kind") == "cron" else None
    try:
        return ZoneInfo(str(name or "UTC"))
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def logical_time_text(scheduled_for: datetime, trigger: dict[str, Any] | None) -> str:
    """A run's ``scheduled_for`` as the notebook receives it: ISO 8601 in the job's zone."""
    return scheduled_for.astimezone(job_timezone(trigger)).isoformat()


# -- sweeps ---------------------------------------------------------------------------------


def sweep_sets(sweep: Any) -> list[dict[str, Any]]:
    """The parameter sets of a stored or requested sweep (``None``: one empty set)."""
    if sweep is None:
        return [{}]
    if isinstance(sweep, list):
        return [dict(s) for s in sweep]
    names = list(sweep)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*sweep.values())]


def sweep_size(sweep: Any) -> int:
    """How many runs a fire of a job with ``sweep`` makes (without expanding a grid)."""
    if sweep is None:
        return 1
    if isinstance(sweep, list):
        return len(sweep)
    size = 1
    for options in sweep.values():
        size *= len(options)
    return size


def check_sweep(sweep: Any, declared: list[NotebookParameter], bound: int) -> None:
    """Refuse a sweep larger than ``bound`` sets, or a set that does not fit the notebook's
    parameters cell (the field names the set: ``sweep.3.days``)."""
    if sweep is None:
        return
    size = sweep_size(sweep)
    if size > bound:
        raise InvalidInput(
            f"sweep: it makes {size} parameter sets; at most {bound} are allowed", field="sweep"
        )
    for index, values in enumerate(sweep_sets(sweep)):
        try:
            check_parameters(values, declared, field=f"sweep.{index}")
        except InvalidInput as exc:
            raise InvalidInput(f"{exc.message} (set {index}: {values})", field=exc.field) from None


# -- batches --------------------------------------------------------------------------------


def batch_values(
    job: Any, *, kind: str, total: int, max_parallel: int | None, now: datetime
) -> dict[str, Any]:
    """The columns of a new batch of ``total`` runs of ``job`` (a :class:`Job` or a row)."""
    return {
        "id": new_id(), "job_id": job.id, "owner": job.owner, "kind": kind, "total": total,
        "max_parallel": max_parallel, "created_at": now,
    }  # fmt: skip


def new_batch(
    session: Session,
    job: Job,
    *,
    kind: str,
    total: int,
    max_parallel: int | None,
    now: datetime,
) -> Batch:
    """A batch row for ``total`` runs of ``job`` (added to the session)."""
    batch = Batch(**batch_values(job, kind=kind, total=total, max_parallel=max_parallel, now=now))
    session.add(batch)
    session.flush()
    return batch


def batch_runs(
    job: Job,
    *,
    now: datetime,
    trigger: str,
    fires: Sequence[datetime | None],
    batch: Batch | None,
    chain_id: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Iterator[Run]:
    """The runs of ``job`` for each fire and each of its sweep's sets (fire-major order).

    ``fires``: the logical time of each step (``None``: ``now``). ``overrides`` apply on
    top of every set (a run-now's parameters).
    """
    from .lifecycle import new_run

    sets = sweep_sets(job.sweep)
    for step, fire in enumerate(fires):
        for position, values in enumerate(sets):
            yield new_run(
                job,
                now=now,
                trigger=trigger,
                parameters={**values, **(overrides or {})},
                scheduled_for=fire,
                batch_id=batch.id if batch else None,
                batch_index=step * len(sets) + position,
                **({"chain_id": chain_id} if chain_id else {}),
            )


def fire_rows(
    job: Any, fire: datetime, now: datetime
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The rows one schedule fire of ``job`` (a row with its columns) inserts: its batch
    (``None`` for a job without a sweep) and its runs, one per set of the sweep, sharing
    the batch's id and the fire's chain (so ``after`` jobs follow the whole batch)."""
    from .lifecycle import run_values

    if job.sweep is None:
        return None, [run_values(job, now=now, trigger="schedule", scheduled_for=fire)]
    batch = batch_values(
        job, kind="sweep", total=sweep_size(job.sweep), max_parallel=job.max_parallel, now=now
    )
    runs = [
        run_values(
            job,
            now=now,
            trigger="schedule",
            parameters=values,
            scheduled_for=fire,
            batch_id=batch["id"],
            batch_index=position,
        )
        for position, values in enumerate(sweep_sets(job.sweep))
    ]
    return batch, runs


def batch_progress(session: Session, batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Counts of each batch's runs by the outcome of their last attempt: ``done``,
    ``failed``, ``running``, ``queued`` (a retried run counts once, as its retry)."""
    if not batch_ids:
        return {}
    latest = (
        select(func.max(Run.id))
        .where(Run.batch_id.in_(batch_ids))
        .group_by(Run.batch_id, Run.batch_index)
    ).scalar_subquery()
    rows = session.execute(
        select(Run.batch_id, Run.status, func.count())
        .where(Run.id.in_(latest))
        .group_by(Run.batch_id, Run.status)
    ).all()
    progress = {b: {"done": 0, "failed": 0, "running": 0, "queued": 0} for b in batch_ids}
    for batch_id, status, count in rows:
        counts = progress[str(batch_id)]
        if status in FINAL_STATUSES:
            counts["done"] += count
            counts["failed"] += count if status in FAILURE_STATUSES else 0
        else:
            counts[status] += count
    return progress


# -- backfills ------------------------------------------------------------------------------


def backfill_fires(
    job: Job, start: datetime, end: datetime, limit: int, count_limit: int
) -> tuple[list[datetime], int, datetime | None]:
    """The fires of ``job``'s schedule in ``[start, end]``: the first ``limit`` of them,
    how many there are (counted up to ``count_limit``, past which the count is that
    limit + 1) and the last one counted.

    The fires are the ticker's (:func:`~jupyter_sched.triggers.iter_fires`, in the job's
    timezone, with its daylight-saving rules), within the job's start/end window.
    """
    kind = job.trigger.get("kind")
    if kind not in SCHEDULED_KINDS:
        raise InvalidInput(
            f"trigger: the job has no schedule (its trigger is {kind!r}); a backfill replays "
            f"the fires of a {', '.join(SCHEDULED_KINDS[:-1])} or once trigger",
            field="trigger",
        )
    if end < start:
        raise InvalidInput("end: must not be before start", field="end")
    if job.start_at is not None and start < job.start_at:
        raise InvalidInput(
            f"start: before the job's window, which starts at {job.start_at.isoformat()}",
            field="start",
        )
    if job.end_at is not None and end > job.end_at:
        raise InvalidInput(
            f"end: after the job's window, which ends at {job.end_at.isoformat()}", field="end"
        )
    fires: list[datetime] = []
    count = 0
    last = None
    after = start - timedelta(microseconds=1)
    walk = iter_fires(job.trigger, after, anchor=job.created_at, start_at=job.start_at, end_at=end)
    for fire in itertools.islice(walk, count_limit + 1):
        count += 1
        if len(fires) < limit:
            fires.append(fire)
        last = fire
    return fires, count, last


def count_limit(bound: int) -> int:
    """Fires counted in a backfill range whose runs are bounded by ``bound``."""
    return COUNT_FACTOR * bound


def check_backfill_size(count: int, sets: int, bound: int) -> None:
    """Refuse a backfill of ``count`` fires of ``sets`` runs each over ``bound`` runs."""
    if count * sets <= bound:
        return
    held = f"more than {count - 1}" if count > count_limit(bound) else str(count)
    runs = f" ({count * sets} runs: {sets} per fire)" if sets > 1 else ""
    raise InvalidInput(
        f"end: the range holds {held} fires{runs}; at most {bound} runs can be backfilled at once",
        field="end",
    )


# -- summaries ------------------------------------------------------------------------------

#: Columns of a summary before the parameters and the values.
SUMMARY_COLUMNS = ("run_id", "scheduled_for", "status", "duration_seconds")


def summary_runs(session: Session, job_id: str, batch_id: str | None, limit: int) -> list[Run]:
    """The runs a summary shows: the last attempt of each run of the batch, in batch
    order; or the job's newest ``limit`` runs, oldest first."""
    if batch_id is not None:
        latest = (
            select(func.max(Run.id))
            .where(Run.batch_id == batch_id, Run.job_id == job_id)
            .group_by(Run.batch_index)
        ).scalar_subquery()
        return list(
            session.scalars(select(Run).where(Run.id.in_(latest)).order_by(Run.batch_index))
        )
    newest = session.scalars(
        select(Run).where(Run.job_id == job_id).order_by(Run.id.desc()).limit(limit)
    )
    return list(reversed(list(newest)))


def summary_table(runs: Sequence[Run]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The parameter names, the value names and one row per run (JSON values kept).

    The ``scheduled_for`` parameter a notebook received is the run's own column."""
    parameters = sorted(
        {name for run in runs for name in run.parameters} - {SCHEDULED_FOR_PARAMETER}
    )
    values = sorted({name for run in runs for name in (run.values or {})})
    rows = [
        {
            "run_id": run.id,
            "batch_index": run.batch_index,
            "scheduled_for": run.scheduled_for,
            "status": run.status,
            "duration_seconds": run.duration_seconds,
            "parameters": dict(run.parameters),
            "values": dict(run.values or {}),
        }
        for run in runs
    ]
    return parameters, values, rows


def summary_csv(
    parameters: Sequence[str], values: Sequence[str], rows: Sequence[dict[str, Any]]
) -> str:
    """The summary as CSV: the run's columns, then one column per parameter and per value
    (``value.<name>`` when a value is named like a parameter). Strings are written as
    they are; other JSON values as JSON."""
    value_columns = [f"value.{v}" if v in parameters or v in SUMMARY_COLUMNS else v for v in values]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*SUMMARY_COLUMNS, *parameters, *value_columns])
    for row in rows:
        when = row["scheduled_for"]
        writer.writerow(
            [
                row["run_id"],
                when.isoformat() if when else "",
                row["status"],
                "" if row["duration_seconds"] is None else row["duration_seconds"],
                *(_cell(row["parameters"], name) for name in parameters),
                *(_cell(row["values"], name) for name in values),
            ]
        )
    return out.getvalue()


def _cell(mapping: dict[str, Any], name: str) -> str:
    if name not in mapping:
        return ""
    value = mapping[name]
    return value if isinstance(value, str) else json.dumps(value)
