"""The run lifecycle: every change of a run's state, as conditional database updates.

``queued → running → succeeded | failed | timed_out | cancelled | lost`` (and ``skipped``
at fire time). Each transition is one ``UPDATE ... WHERE status = <expected>``, so when two
parties race (a duplicate delivery, a cancel against a completion, two reapers) exactly
one wins and the others change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from . import notify, workflows
from .db import Database, updated
from .errors import Conflict
from .models import Batch, Dependency, Job, JobCounts, Run, new_id
from .queue import Queues
from .statuses import (
    CONDITION_STATUSES,
    FAILURE_STATUSES,
    FINAL_STATUSES,
    RETRYABLE_STATUSES,
    Outcome,
)

log = logging.getLogger(__name__)

#: Overlap policies under which a job's runs never execute side by side.
SERIAL_OVERLAPS = ("queue", "replace")


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
    """A run of ``job`` (or an ad-hoc run when ``job`` is None) with the job's settings.

    ``scheduled_for`` is the run's logical time: the fire, the backfill step, or (when
    ``None``) ``now``, the time of the request. ``fields`` set any other column and take
    precedence over the job's settings.
    """
    values: dict[str, Any] = {
        "id": new_id(),
        "job_id": job.id if job else None,
        "owner": job.owner if job else "",
        "notebook": job.notebook if job else "",
        "root_dir": job.root_dir if job else None,
        "kernel": job.kernel if job else None,
        "queue": job.queue if job else "default",
        "priority": job.priority if job else 0,
        "timeout_seconds": job.timeout_seconds if job else None,
        "output_formats": list(job.output_formats) if job else ["ipynb"],
        "attempt": 1,
        "progress_done": 0,
        "progress_total": 0,
        "values": {},
        "batch_index": 0,
        **fields,
        "trigger": trigger,
        "status": status,
        "parameters": {**(job.parameters if job else {}), **(parameters or {})},
        "scheduled_for": scheduled_for or now,
        "queued_at": now,
    }
    if owner is not None:
        values["owner"] = owner
    if notebook is not None:
        values["notebook"] = notebook
    if not values.get("chain_id"):
        # a schedule fire is shared by every job scheduled for that instant
        fire = scheduled_for if trigger == "schedule" else None
        values["chain_id"] = f"fire:{fire.isoformat()}" if fire else values["id"]
    values.setdefault("caused_by", [])
    run = Run(**values)
    if status in FINAL_STATUSES:
        run.finished_at = now
    return run


def insert_run(session: Session, run: Run) -> bool:
    """Insert ``run`` unless a unique key says it exists already (a fire, a dependency
    run of the same chain); returns whether it was inserted."""
    values = {c.key: getattr(run, c.key) for c in Run.__table__.columns}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return bool(updated(session, insert(Run).values(**values).on_conflict_do_nothing()))


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
    for upstream in workflows.upstream_ids(job.trigger):
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


def dispatch(
    db: Database,
    queues: Queues,
    now: datetime,
    *,
    job_id: str | None = None,
    run_id: str | None = None,
    run_ids: list[str] | None = None,
    limit: int = 500,
) -> list[str]:
    """Hand runs that are ready to the queue; returns their ids.

    A run is ready when it is queued, not yet handed over, past its ``not_before``, and,
    for a job whose overlap policy is ``queue`` or ``replace``, no other run of the job is
    running or already handed over (the oldest waiting run goes first).
    """
    other = aliased(Run)
    busy = exists().where(
        other.job_id == Run.job_id,
        other.id != Run.id,
        or_(
            other.status == "running",
            and_(other.status == "queued", other.enqueued_at.is_not(None)),
            and_(other.status == "queued", other.id < Run.id),
        ),
    )
    query = (
        select(Run.id, Run.queue, Run.priority, Run.batch_id)
        .outerjoin(Job, Job.id == Run.job_id)
        .where(
            Run.status == "queued",
            Run.enqueued_at.is_(None),
            or_(Run.not_before.is_(None), Run.not_before <= now),
            or_(Job.id.is_(None), Job.overlap.not_in(SERIAL_OVERLAPS), ~busy),
        )
        # a batch's runs share their queue time: they go in batch order (dates, sets)
        .order_by(Run.priority.desc(), Run.queued_at, Run.batch_index, Run.id)
        .limit(limit)
    )
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    if run_id is not None:
        query = query.where(Run.id == run_id)
    if run_ids is not None:
        query = query.where(Run.id.in_(run_ids))
    with db.read() as session:
        candidates = session.execute(query).all()
    sent = []
    full: set[str] = set()  # batches found with no room left during this call
    for run_id, queue, priority, batch_id in candidates:
        if batch_id in full:
            continue
        with db.write() as session:
            if batch_id is not None and not _batch_has_room(session, batch_id):
                full.add(batch_id)
                continue
            won = updated(
                session,
                update(Run)
                .where(Run.id == run_id, Run.status == "queued", Run.enqueued_at.is_(None))
                .values(enqueued_at=now),
            )
        if not won:
            continue
        try:
            queues.enqueue(run_id, queue, priority)
        except Exception:
            log.warning("could not enqueue run %s; will retry", run_id, exc_info=True)
            with db.write() as session:
                session.execute(update(Run).where(Run.id == run_id).values(enqueued_at=None))
            break
        sent.append(run_id)
    return sent


def _batch_has_room(session: Session, batch_id: str) -> bool:
    """Whether a run of the batch may be handed over: fewer than its ``max_parallel`` are
    handed over or running. The batch row is locked first (PostgreSQL; SQLite's write
    transactions exclude each other), so two dispatchers cannot both take the last slot."""
    limit = session.scalar(select(Batch.max_parallel).where(Batch.id == batch_id).with_for_update())
    if limit is None:
        return True
    in_flight = session.scalar(
        select(func.count()).where(
            Run.batch_id == batch_id,
            or_(
                Run.status == "running", and_(Run.status == "queued", Run.enqueued_at.is_not(None))
            ),
        )
    )
    return (in_flight or 0) < limit


def reconcile(db: Database, queues: Queues, now: datetime, *, older_than: float) -> list[str]:
    """Hand over again the queued runs whose queue message is gone; returns their ids.

    A message disappears when Redis restarts without persistence, when the queue file is
    removed, or when a worker dies between taking a message and claiming its run. A run
    that was handed over more than ``older_than`` seconds ago, is still queued, and is not
    waiting in its queue is dispatched again. Should the old message still arrive, the
    conditional claim makes the second delivery a no-op.
    """
    cutoff = now - timedelta(seconds=older_than)
    with db.read() as session:
        stale = session.execute(
            select(Run.id, Run.queue).where(
                Run.status == "queued", Run.enqueued_at.is_not(None), Run.enqueued_at < cutoff
            )
        ).all()
    if not stale:
        return []
    waiting: dict[str, set[str]] = {}
    missing = []
    for run_id, queue in stale:
        if queue not in waiting:
            waiting[queue] = queues[queue].pending_ids()
        if run_id not in waiting[queue]:
            missing.append(run_id)
    if not missing:
        return []
    with db.write() as session:
        session.execute(
            update(Run)
            .where(Run.id.in_(missing), Run.status == "queued", Run.enqueued_at < cutoff)
            .values(enqueued_at=None)
        )
    log.warning("%d queued run(s) had no queue message; dispatching them again", len(missing))
    return dispatch(db, queues, now, run_ids=missing)
