"""The run lifecycle: every change of a run's state, as conditional database updates.

``queued → running → succeeded | failed | timed_out | cancelled | lost`` (and ``skipped``
at fire time). Each transition is one ``UPDATE ... WHERE status = <expected>``, so when two
parties race (a duplicate delivery, a cancel against a completion, two reapers) exactly
one wins and the others change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import notify, workflows
from .db import Database, updated
from .errors import Conflict
from .models import Dependency, Job, JobCounts, Run, new_id
from .statuses import (
    CONDITION_STATUSES,
    FAILURE_STATUSES,
    FINAL_STATUSES,
    RETRYABLE_STATUSES,
    Outcome,
)
from .storedtriggers import upstream_ids

log = logging.getLogger(__name__)

#: Overlap policies under which a job's runs never execute side by side.
SERIAL_OVERLAPS = ("queue", "replace")
#: A new run's row before any value is set: every column, None.
_NO_VALUES: dict[str, Any] = dict.fromkeys(column.key for column in Run.__table__.columns)


def run_values(
    job: Any,
    *,
    now: datetime,
    trigger: str,
    owner: str | None = None,
    notebook: str | None = None,
    parameters: dict[str, Any] | None = None,
    scheduled_for: datetime | None = None,
    status: str = "queued",
    **fields: Any,
) -> dict[str, Any]:
    """Every column of a new run of ``job`` (a :class:`Job` or a row with its columns;
    ``None`` for an ad-hoc run), as :func:`new_run` makes it, for bulk inserts.

    ``scheduled_for`` is the run's logical time: the fire, the backfill step, or (when
    ``None``) ``now``, the time of the request. ``fields`` set any other column and take
    precedence over the job's settings.
    """
    values = _NO_VALUES.copy()
    if job is not None:
        values.update(
            job_id=job.id,
            owner=job.owner,
            notebook=job.notebook,
            root_dir=job.root_dir,
            kernel=job.kernel,
            queue=job.queue,
            priority=job.priority,
            timeout_seconds=job.timeout_seconds,
            output_formats=list(job.output_formats),
        )
        job_parameters = job.parameters
    else:
        values.update(owner="", notebook="", queue="default", priority=0, output_formats=["ipynb"])
        job_parameters = {}
    values.update(
        id=new_id(), attempt=1, progress_done=0, progress_total=0, values={}, batch_index=0
    )
    if fields:
        values.update(fields)
    values.update(
        trigger=trigger,
        status=status,
        parameters={**job_parameters, **parameters} if parameters else dict(job_parameters),
        scheduled_for=scheduled_for or now,
        queued_at=now,
    )
    if owner is not None:
        values["owner"] = owner
    if notebook is not None:
        values["notebook"] = notebook
    if not values.get("chain_id"):
        # a schedule fire is shared by every job scheduled for that instant
        fire = scheduled_for if trigger == "schedule" else None
        values["chain_id"] = f"fire:{fire.isoformat()}" if fire else values["id"]
    if values.get("caused_by") is None:
        values["caused_by"] = []
    if status in FINAL_STATUSES and values.get("finished_at") is None:
        values["finished_at"] = now
    return values


def new_run(
    job: Job | None,
    *,
    now: datetime,
    trigger: str,
    owner: str | None = None,
    notebook: str | None = None,
    parameters: dict[str, Any] | None = None,
    scheduled_for: datetime | None = None,
    status: str = "queued",
    **fields: Any,
) -> Run:
    """A run of ``job`` (or an ad-hoc run when ``job`` is None) with the job's settings
    (see :func:`run_values`)."""
    values = run_values(
        job,
        now=now,
        trigger=trigger,
        owner=owner,
        notebook=notebook,
        parameters=parameters,
        scheduled_for=scheduled_for,
        status=status,
        **fields,
    )
    return Run(**values)


def insert_run(session: Session, run: Run) -> bool:
    """Insert ``run`` unless a unique key says it exists already (a fire, a dependency
    run of the same chain); returns whether it was inserted."""
    values = {c.key: getattr(run, c.key) for c in Run.__table__.columns}
    return bool(insert_runs(session, [values]))


def insert_runs(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert runs (each a dict of every column, see :func:`run_values`) in one
    executemany, skipping those a unique key says exist already (a fire another ticker
    made, a dependency run of the same chain); returns the ids inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(cast(Table, Run.__table__)).on_conflict_do_nothing()
    inserted = bulk_execute(session, "insert runs", statement, rows)
    ids = [row["id"] for row in rows]
    if inserted == len(rows):
        return set(ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(session.scalars(select(Run.id).where(Run.id.in_(ids[start : start + 500]))))
    return found


_COMPILED: dict[tuple[str, str], tuple[str, list[str], list[Any], bool]] = {}


def bulk_execute(session: Session, name: str, statement: Any, rows: list[dict[str, Any]]) -> int:
    """Run ``statement`` once per row with the driver's executemany, converting values
    with the columns' types, and return the rows it changed. ``name`` identifies the
    statement (always the same one for a name): it is compiled once per name and dialect.

    SQLAlchemy's own executemany builds every row's parameters through its compiler,
    which costs more than the database's work for a batch of thousands of runs; here the
    statement is compiled once (per dialect) and each row costs one tuple.
    """
    connection = session.connection()
    dialect = connection.dialect
    key = (dialect.name, name)
    compiled_form = _COMPILED.get(key)
    if compiled_form is None:
        compiled = statement.compile(dialect=dialect)
        names = list(compiled.positiontup or compiled.binds)
        processors = [
            compiled.binds[bind].type.dialect_impl(dialect).bind_processor(dialect)
            for bind in names
        ]
        compiled_form = (str(compiled), names, processors, bool(compiled.positiontup))
        _COMPILED[key] = compiled_form
    sql, names, processors, positional = compiled_form
    # Column by column: a batch repeats values (its instant, the fire time, the queue,
    # empty JSON lists), each converted once per column.
    columns = [
        _convert_column([row[bind] for row in rows], process)
        for bind, process in zip(names, processors, strict=True)
    ]
    converted: list[Any] = (
        list(zip(*columns, strict=True))
        if positional
        else [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    )
    result = connection.exec_driver_sql(sql, converted)
    return int(result.rowcount)


def _convert_column(values: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    """``values`` converted by a column's bind processor, each distinct value once.

    Values are told apart by type as well (``1``, ``1.0`` and ``True`` are equal keys of a
    dict); JSON objects and lists, which cannot be keys, by their ``repr``.
    """
    if process is None:
        return values
    memo: dict[Any, Any] = {}
    converted: list[Any] = []
    for value in values:
        if value is None:
            converted.append(None)
            continue
        kind = value.__class__
        key = (kind, repr(value)) if kind is dict or kind is list else (kind, value)
        try:
            converted.append(memo[key])
        except KeyError:
            converted.append(memo.setdefault(key, process(value)))
        except TypeError:  # another value that cannot be a key
            converted.append(process(value))
    return converted


def count_final(session: Session, job_id: str | None, status: str, at: datetime) -> None:
    """Add a finished run to its job's counters (in the transaction that finished it)."""
    if job_id is None:
        return
    column = getattr(JobCounts, status)
    values: dict[str, Any] = {"job_id": job_id, status: 1}
    changes: dict[str, Any] = {status: column + 1}
    if status == "succeeded":
        values["last_success_at"] = changes["last_success_at"] = at
    elif status in FAILURE_STATUSES:
        values["last_failure_at"] = changes["last_failure_at"] = at
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(JobCounts)
        .values(**values)
        .on_conflict_do_update(index_elements=["job_id"], set_=changes)
    )


def claim(
    db: Database,
    run_id: str,
    worker_id: str,
    now: datetime,
    *,
    earlier: Sequence[datetime] = (),
) -> bool:
    """Take a queued run for ``worker_id``. False when it is not queued any more.

    ``earlier``: the times of this worker's earlier attempts at this claim, whose commits
    may have happened although their answers were lost (the database went away); a run
    claimed by one of them counts as taken by this call.
    """
    with db.write() as session:
        claimed = updated(
            session,
            update(Run)
            .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested_at.is_(None))
            .values(status="running", worker_id=worker_id, claimed_at=now, started_at=now),
        )
        if claimed == 1:
            return True
        run = session.get(Run, run_id) if earlier else None
        return (
            run is not None
            and run.status == "running"
            and run.worker_id == worker_id
            and run.claimed_at in earlier
        )


def finish(
    db: Database,
    run_id: str,
    outcome: Outcome,
    now: datetime,
    *,
    max_retry_delay: float,
    from_statuses: tuple[str, ...] = ("running",),
    where: Any = None,
    repeated: bool = False,
    **refs: Any,
) -> Run | None:
    """Record the final state of a run and create its retry if its job allows one.

    Returns the finished run, or ``None`` when the run was no longer in ``from_statuses``
    (another party finished it first; nothing is changed). ``where`` adds a condition to
    the update (the reaper's "heartbeat still stale"). ``repeated``: this call repeats,
    with the same ``outcome`` and ``now``, one whose commit may have happened although its
    answer was lost; the run that call finished is returned and nothing changes.
    """
    with db.write() as session:
        run = session.get(Run, run_id)
        if repeated and run is not None and run.status == outcome.status and run.finished_at == now:
            return run  # finished by the earlier attempt
        if run is None or run.status not in from_statuses:
            return None
        started = run.started_at
        values: dict[str, Any] = {
            "status": outcome.status,
            "finished_at": now,
            "duration_seconds": (now - started).total_seconds() if started else None,
            "error_ename": outcome.ename,
            "error_evalue": outcome.evalue,
            "error_cell_index": outcome.cell_index,
            **refs,
        }
        conditions = [Run.id == run_id, Run.status == run.status]
        if where is not None:
            conditions.append(where)
        if updated(session, update(Run).where(*conditions).values(**values)) != 1:
            return None
        count_final(session, run.job_id, outcome.status, now)
        session.refresh(run)
        retry = None
        if outcome.status in RETRYABLE_STATUSES:
            retry = schedule_retry(session, run, now, max_retry_delay=max_retry_delay)
        if retry is None:  # the outcome of this fire is settled
            on_run_final(session, run, now)
            notify.queue_notifications(session, run, now)
        return run


def on_run_final(session: Session, run: Run, now: datetime) -> list[Run]:
    """Create the runs of the jobs that follow ``run``'s job, if all their upstreams are
    done for the run's chain. Called in the transaction that records the final state."""
    if run.job_id is None or run.chain_id is None:
        return []
    created = []
    for dependency in session.scalars(
        select(Dependency).where(Dependency.upstream_id == run.job_id)
    ):
        downstream = session.get(Job, dependency.downstream_id)
        if downstream is None or downstream.status != "active":
            continue
        causes = _satisfied(session, downstream, run.chain_id)
        if causes is None:
            continue
        parameters = {}
        if downstream.trigger.get("pass_results"):
            parameters = {
                "upstream_run_id": run.id,
                workflows.UPSTREAM_OUTPUT: run.output_ref or "",
                "upstream_parameters": dict(run.parameters),
            }
        child = new_run(
            downstream,
            now=now,
            trigger="dependency",
            parameters=parameters,
            scheduled_for=run.scheduled_for,
            chain_id=run.chain_id,
            caused_by=[c.id for c in causes],
        )
        if insert_run(session, child):
            created.append(child)
    return created


def _satisfied(session: Session, job: Job, chain_id: str) -> list[Run] | None:
    """The final upstream runs of ``chain_id`` if each upstream meets the job's condition.

    An upstream job may have made several runs in the chain (a batch: a sweep's sets, a
    backfill's steps): the condition then applies to the batch, once all its runs have
    ended, judged on the last attempt of each: ``success`` when all succeeded, ``failure``
    when any failed, ``completion`` when all ended.
    """
    condition = job.trigger.get("condition", "success")
    wanted = CONDITION_STATUSES[condition]
    causes = []
    for upstream in upstream_ids(job.trigger):
        runs = session.scalars(
            select(Run).where(Run.job_id == upstream, Run.chain_id == chain_id).order_by(Run.id)
        ).all()
        last: dict[int, Run] = {}
        for run in runs:  # by id: a retry comes after the run it retries
            last[run.batch_index] = run
        if not last or any(not run.is_final for run in last.values()):
            return None
        outcomes = list(last.values())
        if condition == "failure":
            met = any(run.status in wanted for run in outcomes)
        else:
            met = all(run.status in wanted for run in outcomes)
        if not met:
            return None
        causes.append(runs[-1])
    return causes


def retry_delay(job: Job, attempt: int, max_retry_delay: float) -> float:
    """Seconds before attempt ``attempt + 1``: delay × backoff^(attempt-1), capped."""
    delay = job.retry_delay_seconds * job.retry_backoff ** (attempt - 1)
    cap = job.retry_max_delay_seconds or max_retry_delay
    return float(min(delay, cap, max_retry_delay))


def schedule_retry(
    session: Session, run: Run, now: datetime, *, max_retry_delay: float
) -> Run | None:
    """Create the next attempt of ``run`` when its job has retries left."""
    if run.job_id is None:
        return None
    job = session.get(Job, run.job_id)
    if job is None or run.attempt > job.retries:
        return None
    delay = retry_delay(job, run.attempt, max_retry_delay)
    retry = new_run(
        job,
        now=now,
        trigger="retry",
        parameters=run.parameters,
        attempt=run.attempt + 1,
        retry_of=run.id,
        root_dir=run.root_dir,
        scheduled_for=run.scheduled_for,
        chain_id=run.chain_id,
        caused_by=list(run.caused_by),
        batch_id=run.batch_id,
        batch_index=run.batch_index,
        not_before=now + timedelta(seconds=delay),
    )
    retry.parameters = dict(run.parameters)
    session.add(retry)
    session.flush()
    log.info("run %s (%s) will be retried as %s in %.1fs", run.id, run.status, retry.id, delay)
    return retry


def request_cancel(db: Database, run_id: str, now: datetime, *, max_retry_delay: float) -> Run:
    """Cancel a run: a queued one at once, a running one through its worker.

    Raises :class:`Conflict` for a run that has already finished.
    """
    cancelled = finish(
        db,
        run_id,
        Outcome("cancelled", "Cancelled", "cancelled before it started"),
        now,
        max_retry_delay=max_retry_delay,
        from_statuses=("queued",),
    )
    if cancelled is not None:
        return cancelled
    with db.write() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "running", Run.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now)
        )
        run = session.get(Run, run_id)
        if run is None:
            raise Conflict(f"run {run_id} no longer exists")
        if run.status in FINAL_STATUSES:
            raise Conflict(f"run {run_id} has already finished ({run.status})", field="status")
        return run
