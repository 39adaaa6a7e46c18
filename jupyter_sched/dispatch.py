"""Handing runs to the queue: which queued runs are ready, marking them handed over, and
putting them on their huey queues in batches; and handing over again runs whose queue
message was lost.

A run is handed over at most once at a time: the mark (``enqueued_at``) is a conditional
update, and a queue that fails gets its runs back for a later pass. Which runs may go is
decided in SQL: a job whose overlap policy is serial waits for its running run, and a
batch at its ``max_parallel`` holds its runs back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from .db import Database
from .lifecycle import SERIAL_OVERLAPS
from .models import Batch, Job, Run
from .queue import Queues

log = logging.getLogger(__name__)

#: Runs handed to the queue per transaction (and per round trip to the queue).
DISPATCH_BATCH = 1000
#: A job due within this many seconds counts as work expected: workers prepare kernels,
#: and an embedded worker that exited idle is started again.
DUE_SOON_SECONDS = 120.0


def dispatch(
    db: Database,
    queues: Queues,
    now: datetime,
    *,
    job_id: str | None = None,
    run_id: str | None = None,
    run_ids: list[str] | None = None,
    limit: int | None = None,
) -> list[str]:
    """Hand every run that is ready (at most ``limit``) to the queue; returns their ids.

    A run is ready when it is queued, not yet handed over, past its ``not_before``, and,
    for a job whose overlap policy is ``queue`` or ``replace``, no other run of the job is
    running or already handed over (the oldest waiting run goes first). Runs go over in
    batches of :data:`DISPATCH_BATCH`: one conditional update marks a batch handed over,
    then one round trip per queue puts it on the queue.
    """
    sent: list[str] = []
    while limit is None or len(sent) < limit:
        size = DISPATCH_BATCH if limit is None else min(DISPATCH_BATCH, limit - len(sent))
        query = _ready_runs_statement(size)
        if job_id is not None:
            query = query.where(Run.job_id == job_id)
        if run_id is not None:
            query = query.where(Run.id == run_id)
        if run_ids is not None:
            query = query.where(Run.id.in_(run_ids))
        with db.peek() as connection:
            candidates = connection.execute(query, {"now": now}).all()
        if not candidates:
            break
        batch, complete = _dispatch_batch(db, queues, now, candidates)
        sent += batch
        if not batch or not complete or len(candidates) < size:
            break
    return sent


@functools.lru_cache(maxsize=16)
def _ready_runs_statement(limit: int) -> Any:
    """The query of ready runs, built once per ``limit`` with ``now`` as a parameter
    (building it, its alias and subquery, costs more than running it on an idle tick)."""
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
    now = bindparam("now", type_=Run.__table__.c.not_before.type)
    flying = aliased(Run)
    batch_in_flight = (
        select(func.count())
        .where(flying.batch_id == Run.batch_id, _in_flight(flying))
        .scalar_subquery()
    )
    return (
        select(Run.id, Run.queue, Run.priority, Run.batch_id)
        .outerjoin(Job, Job.id == Run.job_id)
        .outerjoin(Batch, Batch.id == Run.batch_id)
        .where(
            Run.status == "queued",
            Run.enqueued_at.is_(None),
            or_(Run.not_before.is_(None), Run.not_before <= now),
            or_(Job.id.is_(None), Job.overlap.not_in(SERIAL_OVERLAPS), ~busy),
            # a batch at its max_parallel holds its runs back, not the runs behind them
            or_(Batch.max_parallel.is_(None), batch_in_flight < Batch.max_parallel),
        )
        # a batch's runs share their queue time: they go in batch order (dates, sets)
        .order_by(Run.priority.desc(), Run.queued_at, Run.batch_index, Run.id)
        .limit(limit)
    )


def _dispatch_batch(
    db: Database, queues: Queues, now: datetime, candidates: Sequence[Any]
) -> tuple[list[str], bool]:
    """Mark ``candidates`` handed over (those still waiting: another dispatcher may have
    taken some) and put them on their queues; returns the ids sent and whether every
    queue took its share (a queue that fails gets its runs back, for a later pass)."""
    with db.write() as session:
        candidates = _within_batch_limits(session, candidates)
        if not candidates:
            return [], True
        won = set(
            session.execute(
                update(Run)
                .where(
                    Run.id.in_([c.id for c in candidates]),
                    Run.status == "queued",
                    Run.enqueued_at.is_(None),
                )
                .values(enqueued_at=now)
                .returning(Run.id)
            ).scalars()
        )
    return enqueue_marked(db, queues, [c for c in candidates if c.id in won])


def enqueue_marked(db: Database, queues: Queues, runs: Sequence[Any]) -> tuple[list[str], bool]:
    """Put runs already marked handed over (``enqueued_at`` set) on their queues, one
    round trip per queue; ``runs`` have ``id``, ``queue`` and ``priority``. Returns the ids
    sent and whether every queue took its share: a queue that fails gets its runs back
    (``enqueued_at`` cleared, for a later dispatch)."""
    by_queue: dict[str, list[tuple[str, int]]] = {}
    for run in runs:
        by_queue.setdefault(run.queue, []).append((run.id, run.priority))
    sent: list[str] = []
    for queue, items in by_queue.items():
        try:
            queues[queue].enqueue_many(items)
        except Exception:
            log.warning(
                "could not enqueue %d run(s) on %s; will retry", len(items), queue, exc_info=True
            )
            unsent = _not_sent(by_queue, sent)
            with db.write() as session:
                for start in range(0, len(unsent), 500):
                    session.execute(
                        update(Run)
                        .where(Run.id.in_(unsent[start : start + 500]), Run.status == "queued")
                        .values(enqueued_at=None)
                    )
            return sent, False
        sent += [run_id for run_id, _ in items]
    return sent, True


def _not_sent(by_queue: dict[str, list[tuple[str, int]]], sent: list[str]) -> list[str]:
    done = set(sent)
    return [run_id for items in by_queue.values() for run_id, _ in items if run_id not in done]


def _in_flight(run: Any) -> Any:
    """Runs handed over or running (what a batch's ``max_parallel`` bounds)."""
    return or_(run.status == "running", and_(run.status == "queued", run.enqueued_at.is_not(None)))


def _within_batch_limits(session: Session, candidates: Sequence[Any]) -> list[Any]:
    """``candidates`` (in dispatch order) without those past their batch's
    ``max_parallel``, counted in the write transaction: the batch rows are locked first
    (PostgreSQL; SQLite's write transactions exclude each other), so two dispatchers
    cannot both take a batch's last slot."""
    batch_ids = {c.batch_id for c in candidates if c.batch_id is not None}
    if not batch_ids:
        return list(candidates)
    limits: dict[str, int] = {
        batch_id: limit
        for batch_id, limit in session.execute(
            select(Batch.id, Batch.max_parallel).where(Batch.id.in_(batch_ids)).with_for_update()
        )
        if limit is not None
    }
    if not limits:
        return list(candidates)
    in_flight = dict(
        session.execute(
            select(Run.batch_id, func.count())
            .where(Run.batch_id.in_(limits), _in_flight(Run))
            .group_by(Run.batch_id)
        ).all()
    )
    room = {batch_id: limit - in_flight.get(batch_id, 0) for batch_id, limit in limits.items()}
    kept = []
    for candidate in candidates:
        if candidate.batch_id in room:
            if room[candidate.batch_id] <= 0:
                continue
            room[candidate.batch_id] -= 1
        kept.append(candidate)
    return kept


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


def earliest_fire(db: Database) -> datetime | None:
    """When the next active job is due (aware UTC), if any."""
    with db.read() as session:
        due = session.scalar(
            select(func.min(Job.next_fire_at)).where(
                Job.status == "active", Job.next_fire_at.is_not(None)
            )
        )
    if due is not None and due.tzinfo is None:  # SQLite keeps no zone
        due = due.replace(tzinfo=UTC)
    return due


def work_expected(db: Database, now: datetime) -> bool:
    """Whether a worker is needed soon: a run is queued or running, or a job is due
    within :data:`DUE_SOON_SECONDS`."""
    with db.read() as session:
        pending = session.scalar(
            select(Run.id).where(Run.status.in_(("queued", "running"))).limit(1)
        )
    if pending is not None:
        return True
    due = earliest_fire(db)
    return due is not None and (due - now).total_seconds() <= DUE_SOON_SECONDS
