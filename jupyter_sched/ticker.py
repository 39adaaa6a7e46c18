"""The ticker: turns due schedules into runs, dispatches ready runs, reaps lost ones.

Any number of tickers may run against one database: each fire is inserted under a unique
(job, scheduled time) key and a job's ``next_fire_at`` advances with a compare-and-set, so
every fire makes exactly one run. The cost of a tick grows with the number of due fires,
not with the number of jobs (an index on ``(status, next_fire_at)`` finds them).

One job's fault stays its own: a job that cannot be fired (its stored trigger no longer
computes) is set aside with status ``error`` and the reason, and each step of a tick runs
whatever the others did. After the database was unreachable, the reaper waits one lease
before judging heartbeats, so that workers that could not write theirs meanwhile resume.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from . import schedules
from .artifacts import RunFolder
from .clock import utcnow
from .config import Settings
from .db import UNAVAILABLE_ERRORS, Database, updated
from .errors import Unavailable
from .lifecycle import (
    count_final,
    dispatch,
    finish,
    insert_run,
    new_run,
    reconcile,
    request_cancel,
)
from .models import Job, Run
from .notebooks import notebook_root, resolve_notebook
from .notify import Notifier
from .queue import Queues
from .reports import fire_runs
from .retention import prune
from .statuses import IN_FLIGHT_STATUSES, Outcome
from .triggers import job_next_fire, stored_trigger_error

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Due jobs handled per transaction.
BATCH = 200
#: Fires of one job examined per tick when catching up after downtime.
MAX_CATCH_UP = 1000


@dataclass
class TickReport:
    """What one tick did (run ids)."""

    fired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)


def fire_due_jobs(db: Database, settings: Settings, now: datetime) -> TickReport:
    """Create the runs of every fire due at ``now`` and advance each job's next fire.

    A job whose fires cannot be made is set aside (see :func:`set_aside`); the others fire.
    """
    report = TickReport()
    to_replace: list[str] = []
    while True:
        with db.write() as session:
            query = (
                select(Job)
                .where(Job.status == "active", Job.next_fire_at <= now)
                .order_by(Job.next_fire_at)
                .limit(BATCH)
            )
            if not db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            jobs = session.scalars(query).all()
            for job in jobs:
                job_id, due_at = job.id, job.next_fire_at
                fired = TickReport()
                replace: list[str] = []
                try:
                    with session.begin_nested():  # a savepoint: one job's failure is its own
                        _fire_job(session, job, settings, now, fired, replace)
                except UNAVAILABLE_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - whatever the row holds, others fire
                    set_aside(session, job_id, due_at, exc, now)
                    continue
                report.fired += fired.fired
                report.skipped += fired.skipped
                to_replace += replace
        if len(jobs) < BATCH:
            break
    for run_id in to_replace:
        try:
            request_cancel(db, run_id, now, max_retry_delay=settings.max_retry_delay_seconds)
        except Unavailable:
            raise
        except Exception:  # noqa: BLE001 - a run that finished meanwhile needs no cancel
            log.debug("replace: run %s already finished", run_id)
    for run_id in report.fired:
        snapshot_input(db, settings, run_id)
    return report


def set_aside(
    session: Session, job_id: str, due_at: datetime | None, exc: Exception, now: datetime
) -> None:
    """Take a job that cannot be fired out of the schedule: status ``error`` with why.

    Resuming the job or changing its trigger puts it back (see the service).
    """
    detail = stored_trigger_error(exc)
    reason = f"the job cannot be fired: {detail}"[:2000]
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
        ),
    )
    if changed:
        log.warning("job %s set aside: %s", job_id, reason)


def _fire_job(
    session: Session,
    job: Job,
    settings: Settings,
    now: datetime,
    report: TickReport,
    to_replace: list[str],
) -> None:
    due_at = job.next_fire_at
    assert due_at is not None
    fires = [due_at]
    following = job_next_fire(job, due_at)
    while following is not None and following <= now and len(fires) < MAX_CATCH_UP:
        fires.append(following)
        following = job_next_fire(job, following)
    if following is not None and following <= now:
        following = job_next_fire(job, now)
    to_run, missed = schedules.collapse_misfires(
        fires, now, "skip" if job.misfire == "skip" else "run_once", settings.misfire_grace_seconds
    )
    if job.max_runs is not None:
        to_run = to_run[: max(job.max_runs - job.fire_count, 0)]
        if job.fire_count + len(to_run) >= job.max_runs:
            following = None
    advanced = updated(
        session,
        update(Job)
        .where(Job.id == job.id, Job.next_fire_at == due_at)
        .values(next_fire_at=following, fire_count=Job.fire_count + len(to_run)),
    )
    if not advanced:
        return  # another ticker handled this job
    if missed:
        log.info("job %s: %d missed fire(s) not run (misfire=%s)", job.id, len(missed), job.misfire)
        _record_missed(session, job, missed, now, report)
    active = session.scalars(
        select(Run.id).where(Run.job_id == job.id, Run.status.in_(IN_FLIGHT_STATUSES))
    ).all()
    for scheduled_for in to_run:
        if job.overlap == "skip" and active:
            why = f"the previous run {active[0]} was still going (overlap=skip)"
            _record_skipped(session, job, scheduled_for, now, report, "Skipped", why)
            continue
        if job.overlap == "replace":
            to_replace.extend(active)
        for run in fire_runs(session, job, scheduled_for, now):  # a sweep: one per set
            if insert_run(session, run):
                report.fired.append(run.id)
                active = [*active, run.id]


def _record_skipped(
    session: Session,
    job: Job,
    scheduled_for: datetime,
    now: datetime,
    report: TickReport,
    ename: str,
    evalue: str,
) -> None:
    """A ``skipped`` run of the fire at ``scheduled_for``, final at once, saying why."""
    run = new_run(
        job,
        now=now,
        trigger="schedule",
        scheduled_for=scheduled_for,
        status="skipped",
        finished_at=now,
        error_ename=ename,
        error_evalue=evalue,
    )
    if insert_run(session, run):
        count_final(session, job.id, "skipped", now)
        report.skipped.append(run.id)


def _record_missed(
    session: Session, job: Job, missed: list[datetime], now: datetime, report: TickReport
) -> None:
    """One ``skipped`` run, at the latest missed fire, says in the history that fires were
    missed while nothing was ticking (one row, however long the outage)."""
    first, last = missed[0], missed[-1]
    span = (
        f"the fire at {last.isoformat()}"
        if len(missed) == 1
        else f"{len(missed)} fires from {first.isoformat()} to {last.isoformat()}"
    )
    why = f"{span} came while no scheduler was running (misfire={job.misfire})"
    _record_skipped(session, job, last, now, report, "Missed", why)


def snapshot_input(db: Database, settings: Settings, run_id: str) -> None:
    """Copy a run's notebook into its folder now, so the run executes it as it was."""
    with db.read() as session:
        run = session.get(Run, run_id)
        if run is None:
            return
        notebook = run.notebook
        root = notebook_root(run.root_dir, settings.root_dir)
    folder = RunFolder(settings.artifacts_dir, run_id)
    try:
        folder.snapshot(resolve_notebook(root, notebook))
    except Exception as exc:  # noqa: BLE001 - the worker fails the run with a clear error
        log.info("run %s: no snapshot of %s (%s)", run_id, notebook, exc)
        return
    with db.write() as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(input_ref=folder.ref("input.ipynb"))
        )


def reap_lost_runs(db: Database, settings: Settings, now: datetime) -> list[str]:
    """Mark runs whose worker stopped heartbeating as ``lost`` (and retry them).

    A run whose cancel was requested ends ``cancelled`` instead, and is not retried: its
    worker died before it could act on the request, but the user's wish stands.
    """
    cutoff = now - timedelta(seconds=settings.lease_seconds)
    stale = or_(
        Run.heartbeat_at < cutoff,
        and_(Run.heartbeat_at.is_(None), Run.claimed_at < cutoff),
    )
    with db.read() as session:
        candidates = session.execute(
            select(Run.id, Run.cancel_requested_at).where(Run.status == "running", stale)
        ).all()
    lost = []
    for run_id, cancel_requested_at in candidates:
        if cancel_requested_at is not None:
            outcome = Outcome(
                "cancelled", "Cancelled", "the run was cancelled (its worker had stopped)"
            )
        else:
            outcome = Outcome(
                "lost",
                "WorkerLost",
                f"no heartbeat from the run's worker for {settings.lease_seconds:g} s",
            )
        if finish(
            db, run_id, outcome, now, max_retry_delay=settings.max_retry_delay_seconds, where=stale
        ):
            lost.append(run_id)
            log.warning("run %s is %s: its worker stopped heartbeating", run_id, outcome.status)
    return lost


def tick(
    db: Database,
    queues: Queues,
    settings: Settings,
    now: datetime,
    *,
    reconcile_queue: bool = True,
    reap: bool = True,
) -> TickReport:
    """One pass of the ticker: fire due jobs, reap lost runs (when ``reap``), dispatch
    ready runs, and (when ``reconcile_queue``) re-dispatch runs whose queue message was lost.

    Each step runs whatever happened to the others (a failure is logged); only an
    unavailable database ends the tick.
    """
    report = _step("firing due jobs", lambda: fire_due_jobs(db, settings, now), TickReport())
    if reap:
        report.lost = _step("reaping", lambda: reap_lost_runs(db, settings, now), [])
    report.dispatched = _step("dispatching", lambda: dispatch(db, queues, now), [])
    if reconcile_queue:
        report.reconciled = _step(
            "reconciling",
            lambda: reconcile(db, queues, now, older_than=settings.reconcile_seconds),
            [],
        )
    return report


def _step(name: str, action: Callable[[], T], default: T) -> T:
    try:
        return action()
    except Unavailable:
        raise
    except Exception:
        log.exception("tick: %s failed; the other steps go on", name)
        return default


class Ticker:
    """Runs :func:`tick` at least every ``settings.tick_seconds`` in a background thread."""

    def __init__(self, db: Database, queues: Queues, settings: Settings) -> None:
        self.db = db
        self.queues = queues
        self.settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.notifier = Notifier(db, settings)
        self.ticks = 0

    def wake(self) -> None:
        """Tick now (a job changed)."""
        self._wake.set()

    def start(self) -> None:
        """Start ticking (and delivering notifications) in background threads."""
        self._thread = threading.Thread(target=self._loop, name="jupyter-sched-ticker", daemon=True)
        self._thread.start()
        self.notifier.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.notifier.stop(timeout)

    def may_reap(self) -> bool:
        """Whether heartbeats can be judged: this process has reached the database for at
        least a lease without interruption. A worker that could not heartbeat only
        because the database was away has that long to resume before its runs count as
        lost, however long the outage."""
        return self.db.availability.continuous_seconds() >= self.settings.lease_seconds

    def _loop(self) -> None:
        last_reconcile = last_sweep = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                due = time.monotonic() - last_reconcile >= self.settings.reconcile_seconds
                tick(
                    self.db, self.queues, self.settings, utcnow(),
                    reconcile_queue=due, reap=self.may_reap(),
                )  # fmt: skip
                if due:
                    last_reconcile = time.monotonic()
                # Swept even without a deployment retention: jobs may have their own.
                if time.monotonic() - last_sweep >= self.settings.retention_sweep_seconds:
                    prune(self.db, self.settings, utcnow())
                    last_sweep = time.monotonic()
                self.ticks += 1
            except Unavailable:
                pass  # logged once by the database; the next tick tries again
            except Exception:
                log.exception("tick failed; trying again")
            self._wake.wait(self.settings.tick_seconds)
