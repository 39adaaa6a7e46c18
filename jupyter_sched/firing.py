"""Firing due schedules at scale: thousands of jobs due at the same instant in a second.

A pass reads the due jobs, works out each job's fires in Python (the pure plans of
:mod:`jupyter_sched.fireplans`, shared by the jobs of one schedule due at the same
instant, so ten thousand jobs on ``0 6 * * *`` cost one cron step),
then writes a batch at once: one multi-row INSERT of the runs (``ON CONFLICT DO
NOTHING`` on the (job, scheduled time) key) and one executemany UPDATE advancing the
jobs, in a short transaction. Input snapshots are taken per notebook version before the
transaction, not per run (:class:`~jupyter_sched.artifacts.InputStore`).

Exactly one run per fire however many tickers: the batch's job rows are read inside the
write transaction (SQLite serializes writers; PostgreSQL locks the rows with ``FOR
UPDATE SKIP LOCKED``), each advance is a compare-and-set on ``next_fire_at`` and the
insert skips fires that exist. A job whose fires cannot be computed is set aside (status
``error``); should the batch's writes fail for a reason other than an unreachable
database, the batch is written again job by job, each in its own savepoint, so that only
the faulty job is set aside.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Text, bindparam, delete, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .artifacts import InputStore
from .config import Settings
from .db import UNAVAILABLE_ERRORS, Database, updated
from .dispatch import enqueue_marked
from .fireplans import Plan, plan_fires
from .lifecycle import SERIAL_OVERLAPS, bulk_execute, insert_runs, run_values
from .models import Batch, Job, JobCounts, Run
from .notebooks import notebook_root, resolve_notebook
from .queue import Queues
from .reports import fire_rows
from .triggers import stored_trigger_error

log = logging.getLogger(__name__)

#: Due jobs handled per transaction.
BATCH = 1000


class DueJob(NamedTuple):
    """A due job's row as a fire reads it (its JSON columns decoded)."""

    id: str
    owner: str
    notebook: str
    root_dir: str | None
    parameters: dict[str, Any]
    kernel: str | None
    trigger: dict[str, Any]
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    fire_count: int
    next_fire_at: datetime
    misfire: str
    overlap: str
    queue: str
    priority: int
    timeout_seconds: float | None
    output_formats: list[str]
    created_at: datetime
    sweep: dict[str, Any] | None
    max_parallel: int | None
    #: The trigger as stored: jobs with the same text have the same schedule.
    trigger_text: str


#: The job columns a fire needs (rows, not ORM objects: cheaper by an order of magnitude),
#: those of :class:`DueJob`.
_JOB_COLUMNS = tuple(getattr(Job, name) for name in DueJob._fields if name != "trigger_text")
#: JSON columns are read as text and decoded once per distinct text: the jobs of a rush
#: repeat their triggers, parameters and formats.
_JSON_COLUMNS = ("parameters", "trigger", "output_formats", "sweep")
_JSON_POSITIONS = tuple(i for i, c in enumerate(_JOB_COLUMNS) if c.key in _JSON_COLUMNS)
_TRIGGER_POSITION = DueJob._fields.index("trigger")
_SELECTED = tuple(
    sql_cast(c, Text).label(c.key) if c.key in _JSON_COLUMNS else c for c in _JOB_COLUMNS
)


def _due_jobs(rows: Sequence[Any]) -> list[DueJob]:
    """Rows of :data:`_SELECTED` as :class:`DueJob`. A JSON text that does not decode
    stays text, which the job's plan or runs then refuse (the job is set aside)."""
    decoded: dict[str | None, Any] = {None: None}
    jobs: list[DueJob] = []
    for row in rows:
        values = list(row)
        for position in _JSON_POSITIONS:
            text = values[position]
            if text not in decoded:
                with contextlib.suppress(ValueError):
                    decoded[text] = json.loads(text)
            values[position] = decoded.get(text, text)
        jobs.append(DueJob._make((*values, row[_TRIGGER_POSITION])))
    return jobs


_NOW = bindparam("now", type_=Job.__table__.c.next_fire_at.type)
#: Statements built once (building costs more than an idle tick's query): a look at the
#: due jobs without a write lock, then the due jobs' rows in the write transaction
#: (on PostgreSQL locked, skipping those another ticker is firing).
_LOOK = (
    select(Job.id, Job.notebook, Job.root_dir)
    .where(Job.status == "active", Job.next_fire_at <= _NOW)
    .order_by(Job.next_fire_at)
    .limit(BATCH)
)
_DUE_JOBS = (
    select(*_SELECTED)
    .where(Job.status == "active", Job.next_fire_at <= _NOW)
    .order_by(Job.next_fire_at)
    .limit(BATCH)
)
_DUE_JOBS_LOCKED = _DUE_JOBS.with_for_update(skip_locked=True)


@dataclass(frozen=True)
class ReadyRun:
    """A fired run that can go to its queue at once (no overlap rule holds it back)."""

    id: str
    queue: str
    priority: int


_JOBS = cast(Table, Job.__table__)
#: Advance one job past its fires: a compare-and-set on the fire it was due at.
_ADVANCE = (
    _JOBS.update()
    .where(_JOBS.c.id == bindparam("b_id"), _JOBS.c.next_fire_at == bindparam("b_due"))
    .values(next_fire_at=bindparam("b_next"), fire_count=_JOBS.c.fire_count + bindparam("b_count"))
)


@dataclass
class FireReport:
    """Run ids made by a firing pass: runs queued, runs recorded ``skipped``, and the
    running runs that ``overlap=replace`` asks to cancel."""

    fired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    to_replace: list[str] = field(default_factory=list)
    #: Runs inserted already handed over (``id``, ``queue``, ``priority``), to enqueue
    #: once the batch is committed; and those then put on the queue.
    ready: list[ReadyRun] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    #: Due jobs the pass took (fired, set aside, or found fired by another ticker).
    jobs: int = 0

    def add(self, other: FireReport) -> None:
        self.fired += other.fired
        self.skipped += other.skipped
        self.to_replace += other.to_replace
        self.ready += other.ready
        self.enqueued += other.enqueued
        self.jobs += other.jobs


def fire_due_batches(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    queues: Queues | None = None,
    after_batch: Callable[[FireReport], None] | None = None,
) -> FireReport:
    """Fire every job due at ``now``, :data:`BATCH` jobs per transaction.

    With ``queues``, the runs no overlap rule holds back are handed over in the batch's
    transaction and put on their queues right after its commit (one round trip per
    queue), so the first runs start while later batches are written; a crash between
    the two leaves them to the reconciler, as any dispatch. ``after_batch`` is called
    with each batch's report once it is committed. A pass that finds nothing due takes
    no write lock.
    """
    report = FireReport()
    while True:
        with db.peek() as connection:
            looked = connection.execute(_LOOK, {"now": now}).all()
        if not looked:
            break
        inputs = snapshot_inputs(settings, {(row.root_dir, row.notebook) for row in looked})
        batch = _fire_batch(db, settings, now, inputs, hand_over=queues is not None)
        if queues is not None and batch.ready:
            batch.enqueued, _ = enqueue_marked(db, queues, batch.ready)
        report.add(batch)
        if after_batch is not None:
            after_batch(batch)
        if len(looked) < BATCH or not batch.jobs:
            break  # all done, or the rest is locked by another ticker firing them
    return report


def _fire_batch(
    db: Database,
    settings: Settings,
    now: datetime,
    inputs: dict[tuple[str | None, str], str],
    *,
    hand_over: bool,
) -> FireReport:
    with db.write() as session:
        query = _DUE_JOBS if db.is_sqlite else _DUE_JOBS_LOCKED
        jobs = _due_jobs(session.execute(query, {"now": now}).all())
        missing = {(job.root_dir, job.notebook) for job in jobs} - inputs.keys()
        if missing:  # became due since the look before the transaction
            inputs = {**inputs, **snapshot_inputs(settings, missing)}
        plans = _plan_batch(session, jobs, now, settings.misfire_grace_seconds)
        try:
            with session.begin_nested():
                report = _write_plans(session, plans, now, inputs, hand_over)
                report.jobs = len(jobs)
                return report
        except UNAVAILABLE_ERRORS:
            raise
        except Exception:
            log.warning("firing a batch failed; firing its jobs one by one", exc_info=True)
        report = FireReport(jobs=len(jobs))
        for plan in plans:
            try:
                with session.begin_nested():
                    one = _write_plans(session, [plan], now, inputs, hand_over)
            except UNAVAILABLE_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001 - this job's row is at fault
                set_aside(session, plan.job.id, plan.due_at, exc, now)
                continue
            report.add(one)
        return report


def _plan_batch(
    session: Session, jobs: Sequence[DueJob], now: datetime, grace: float
) -> list[Plan]:
    """The plans of a batch's jobs (see :func:`plan_fires`); a job whose plan cannot be made
    is set aside. Jobs on one schedule due at the same instant (a rush) share one plan."""
    shared: dict[tuple[Any, ...], Plan] = {}
    plans: list[Plan] = []
    for job in jobs:
        try:
            key = _shared_plan_key(job)
            known = shared.get(key) if key is not None else None
            if known is None:
                plan = plan_fires(job, now, grace)
                if key is not None:
                    shared[key] = plan
            else:
                plan = Plan(job, known.due_at, known.following, list(known.to_run), known.missed)
            plans.append(plan)
        except Exception as exc:  # noqa: BLE001 - whatever the row holds, others fire
            set_aside(session, job.id, job.next_fire_at, exc, now)
    return plans


def _shared_plan_key(job: DueJob) -> tuple[Any, ...] | None:
    """What :func:`plan_fires` reads of ``job``, for a job whose fires do not depend on
    its creation time (any schedule but an interval); None for the others."""
    if not isinstance(job.trigger, dict) or job.trigger.get("kind") == "interval":
        return None
    return (job.trigger_text, job.next_fire_at, job.start_at, job.end_at, job.max_runs,
            job.fire_count, job.misfire)  # fmt: skip


def _write_plans(
    session: Session,
    plans: Sequence[Plan],
    now: datetime,
    inputs: dict[tuple[str | None, str], str],
    hand_over: bool,
) -> FireReport:
    report = FireReport()
    if not plans:
        return report
    advances = [
        {"b_id": p.job.id, "b_due": p.due_at, "b_next": p.following, "b_count": len(p.to_run)}
        for p in plans
    ]
    advanced = bulk_execute(session, "advance jobs", _ADVANCE, advances)
    if advanced != len(plans):
        if len(plans) == 1:
            return report  # another ticker fired this job
        # The rows are read in this transaction, so this should not happen; if it does,
        # the per-job path finds which job another party moved.
        raise RuntimeError(f"advanced {advanced} of {len(plans)} jobs")
    rows, batches, skipped_rows = _plan_rows(session, plans, now, inputs, hand_over, report)
    if batches:
        session.execute(insert(Batch), batches)
    inserted = insert_runs(session, rows)
    if batches:
        _drop_unused_batches(session, batches, rows, inserted)
    counts: dict[str, int] = {}
    for row in rows:
        if row["id"] not in inserted:
            continue
        if row["id"] in skipped_rows:
            report.skipped.append(row["id"])
            counts[row["job_id"]] = counts.get(row["job_id"], 0) + 1
        else:
            report.fired.append(row["id"])
            if row["enqueued_at"] is not None:
                report.ready.append(ReadyRun(row["id"], row["queue"], row["priority"]))
    _count_skipped(session, counts, now)
    return report


def _plan_rows(
    session: Session,
    plans: Sequence[Plan],
    now: datetime,
    inputs: dict[tuple[str | None, str], str],
    hand_over: bool,
    report: FireReport,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    """The run rows (and sweep batches) that ``plans`` make: the fired runs, a skipped
    record per missed or overlapping fire (their ids apart), runs to replace in ``report``."""
    active = _active_runs(
        session, [p.job.id for p in plans if p.job.overlap in ("skip", "replace")]
    )
    rows: list[dict[str, Any]] = []
    batches: list[dict[str, Any]] = []
    skipped_rows: set[str] = set()
    for plan in plans:
        job = plan.job
        input_ref = inputs.get((job.root_dir, job.notebook))
        if plan.missed is not None:
            log.info("job %s: %s not run (misfire=%s)", job.id, plan.missed.describe(), job.misfire)
            why = (
                f"{plan.missed.describe()} came while no scheduler was running "
                f"(misfire={job.misfire})"
            )
            rows.append(_skipped(job, plan.missed.last, now, "Missed", why))
            skipped_rows.add(rows[-1]["id"])
        running = active.get(job.id, [])
        for scheduled_for in plan.to_run:
            if job.overlap == "skip" and running:
                why = f"the previous run {running[0]} was still going (overlap=skip)"
                rows.append(_skipped(job, scheduled_for, now, "Skipped", why))
                skipped_rows.add(rows[-1]["id"])
                continue
            if job.overlap == "replace":
                report.to_replace.extend(running)
            batch, fired = fire_rows(job, scheduled_for, now)  # a sweep: one run per set
            if batch is not None:
                batches.append(batch)
            for row in fired:
                row["input_ref"] = input_ref
                if hand_over and job.overlap not in SERIAL_OVERLAPS and _has_room(job, row):
                    row["enqueued_at"] = now
            rows += fired
            running = [*running, *(row["id"] for row in fired)]
    return rows, batches, skipped_rows


def _has_room(job: Any, row: dict[str, Any]) -> bool:
    """Whether a new run may be handed over at once: a sweep's batch hands over its
    first ``max_parallel`` runs; the dispatcher sends the others as those end."""
    limit = job.max_parallel
    return limit is None or row["batch_id"] is None or row["batch_index"] < limit


def _drop_unused_batches(
    session: Session, batches: list[dict[str, Any]], rows: list[dict[str, Any]], inserted: set[str]
) -> None:
    """Delete the batches none of whose runs were inserted (the fire existed already)."""
    used = {row["batch_id"] for row in rows if row["id"] in inserted}
    unused = [batch["id"] for batch in batches if batch["id"] not in used]
    if unused:
        session.execute(delete(Batch).where(Batch.id.in_(unused)))


def _skipped(
    job: Any, scheduled_for: datetime, now: datetime, ename: str, evalue: str
) -> dict[str, Any]:
    """A ``skipped`` run of the fire at ``scheduled_for``, final at once, saying why."""
    return run_values(
        job,
        now=now,
        trigger="schedule",
        scheduled_for=scheduled_for,
        status="skipped",
        finished_at=now,
        error_ename=ename,
        error_evalue=evalue,
    )


def _active_runs(session: Session, job_ids: list[str]) -> dict[str, list[str]]:
    """The queued or running runs of ``job_ids``, by job."""
    active: dict[str, list[str]] = {}
    for start in range(0, len(job_ids), 500):
        found = session.execute(
            select(Run.job_id, Run.id)
            .where(
                Run.job_id.in_(job_ids[start : start + 500]), Run.status.in_(("queued", "running"))
            )
            .order_by(Run.id)
        )
        for job_id, run_id in found:
            active.setdefault(str(job_id), []).append(run_id)
    return active


def _count_skipped(session: Session, counts: dict[str, int], now: datetime) -> None:
    """Add skipped runs to their jobs' counters, one statement for the batch."""
    if not counts:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(cast(Table, JobCounts.__table__))
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["job_id"],
            set_={"skipped": JobCounts.skipped + statement.excluded.skipped},
        ),
        [{"job_id": job_id, "skipped": count} for job_id, count in counts.items()],
    )


def snapshot_inputs(
    settings: Settings, notebooks: set[tuple[str | None, str]]
) -> dict[tuple[str | None, str], str]:
    """Store the current version of each ``(root_dir, notebook)`` once; returns the
    references of those that could be read (a run without one fails with a clear error
    from its worker, which looks for the notebook itself)."""
    refs: dict[tuple[str | None, str], str] = {}
    if settings.run_as_owner:
        # Shared copies would be read with the scheduler's rights: each run's worker reads
        # its notebook with its owner's rights instead (see the worker).
        return refs
    store = InputStore(settings.artifacts_dir)
    for root_dir, notebook in notebooks:
        try:
            path = resolve_notebook(notebook_root(root_dir, settings.root_dir), notebook)
            refs[(root_dir, notebook)] = store.store(path)
        except Exception as exc:  # noqa: BLE001 - the worker fails the run with a clear error
            log.info("no snapshot of %s (%s)", notebook, exc)
    return refs


def snapshot_run_input(settings: Settings, root_dir: str | None, notebook: str) -> str | None:
    """The reference of the notebook's current version, stored (None if unreadable)."""
    return snapshot_inputs(settings, {(root_dir, notebook)}).get((root_dir, notebook))


def set_aside(
    session: Session, job_id: str, due_at: datetime | None, exc: Exception, now: datetime
) -> None:
    """Take a job that cannot be fired out of the schedule: status ``error`` with why.

    Resuming the job or changing its trigger puts it back (see the service).
    """
    reason = f"the job cannot be fired: {stored_trigger_error(exc)}"[:2000]
    changed = updated(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == "active", Job.next_fire_at == due_at)
        .values(
            status="error",
            error=reason,
            next_fire_at=None,
            version=Job.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    if changed:
        log.warning("job %s set aside: %s", job_id, reason)
