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

from sqlalchemy import and_, bindparam, func, or_, select, update

from .clock import utcnow
from .config import Settings
from .db import Database
from .dispatch import dispatch, reconcile
from .errors import Unavailable
from .firing import FireReport, fire_due_batches, set_aside, snapshot_run_input
from .lifecycle import finish, request_cancel
from .models import Job, Run
from .notify import Notifier
from .queue import Queues
from .retention import prune, sweep_inputs
from .statuses import Outcome

__all__ = [
    "TickReport",
    "Ticker",
    "fire_due_jobs",
    "reap_lost_runs",
    "set_aside",
    "snapshot_input",
    "tick",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class TickReport:
    """What one tick did (run ids)."""

    fired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)


def fire_due_jobs(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    queues: Queues | None = None,
    after_batch: Callable[[FireReport], None] | None = None,
) -> TickReport:
    """Create the runs of every fire due at ``now`` and advance each job's next fire
    (see :mod:`jupyter_sched.firing`; with ``queues``, the runs ready at once are put on
    their queues batch by batch); then ask the runs that ``overlap=replace`` replaces to
    cancel.

    A job whose fires cannot be made is set aside (see :func:`set_aside`); the others fire.
    """
    fired = fire_due_batches(db, settings, now, queues=queues, after_batch=after_batch)
    for run_id in fired.to_replace:
        try:
            request_cancel(db, run_id, now, max_retry_delay=settings.max_retry_delay_seconds)
        except Unavailable:
            raise
        except Exception:  # noqa: BLE001 - a run that finished meanwhile needs no cancel
            log.debug("replace: run %s already finished", run_id)
    return TickReport(fired=fired.fired, skipped=fired.skipped, dispatched=fired.enqueued)


def snapshot_input(db: Database, settings: Settings, run_id: str) -> None:
    """Keep the run's notebook as it is now (by content), so the run executes it as it was."""
    with db.read() as session:
        run = session.get(Run, run_id)
        if run is None:
            return
        root_dir, notebook = run.root_dir, run.notebook
    ref = snapshot_run_input(settings, root_dir, notebook)
    if ref is None:
        return
    with db.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(input_ref=ref))


_CUTOFF = bindparam("cutoff", type_=Run.__table__.c.heartbeat_at.type)
#: Running runs whose heartbeat (or claim, before the first one) is older than the cutoff;
#: built once: building it costs more than running it when nothing is stale.
_STALE_RUNS = select(Run.id, Run.cancel_requested_at).where(
    Run.status == "running",
    or_(
        Run.heartbeat_at < _CUTOFF,
        and_(Run.heartbeat_at.is_(None), Run.claimed_at < _CUTOFF),
    ),
)
_NEXT_FIRE = (
    select(Job.next_fire_at)
    .where(Job.status == "active", Job.next_fire_at.is_not(None))
    .order_by(Job.next_fire_at)
    .limit(1)
)
_NEXT_RETRY = select(func.min(Run.not_before)).where(
    Run.status == "queued", Run.enqueued_at.is_(None), Run.not_before.is_not(None)
)


def reap_lost_runs(db: Database, settings: Settings, now: datetime) -> list[str]:
    """Mark runs whose worker stopped heartbeating as ``lost`` (and retry them).

    A run whose cancel was requested ends ``cancelled`` instead, and is not retried: its
    worker died before it could act on the request, but the user's wish stands.
    """
    cutoff = now - timedelta(seconds=settings.lease_seconds)
    with db.peek() as connection:
        candidates = connection.execute(_STALE_RUNS, {"cutoff": cutoff}).all()
    if not candidates:
        return []
    stale = or_(
        Run.heartbeat_at < cutoff,
        and_(Run.heartbeat_at.is_(None), Run.claimed_at < cutoff),
    )
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
    """One pass of the ticker: reap lost runs (when ``reap``), fire due jobs, dispatch
    ready runs, and (when ``reconcile_queue``) re-dispatch runs whose queue message was lost.

    Fired runs go to the queue after each batch of fires is committed, so a rush of
    thousands of fires starts its first runs while later batches are written.
    Each step runs whatever happened to the others (a failure is logged); only an
    unavailable database ends the tick.
    """
    report = TickReport()
    if reap:
        report.lost = _step("reaping", lambda: reap_lost_runs(db, settings, now), [])

    fired = _step(
        "firing due jobs", lambda: fire_due_jobs(db, settings, now, queues=queues), TickReport()
    )
    report.fired, report.skipped, report.dispatched = fired.fired, fired.skipped, fired.dispatched
    report.dispatched += _step("dispatching", lambda: dispatch(db, queues, now), [])
    if reconcile_queue:
        report.reconciled = _step(
            "reconciling",
            lambda: reconcile(db, queues, now, older_than=settings.reconcile_seconds),
            [],
        )
    return report


def next_due(db: Database) -> datetime | None:
    """The earliest instant something becomes due: a job's next fire or a retry's delay."""
    with db.peek() as connection:
        fire = connection.scalar(_NEXT_FIRE)
        retry = connection.scalar(_NEXT_RETRY)
    return min((t for t in (fire, retry) if t is not None), default=None)


def _step(name: str, action: Callable[[], T], default: T) -> T:
    try:
        return action()
    except Unavailable:
        raise
    except Exception:
        log.exception("tick: %s failed; the other steps go on", name)
        return default


class Ticker:
    """Runs :func:`tick` in a background thread: at the instant the next fire or retry is
    due, when woken (a job changed), and at least every ``settings.tick_seconds``."""

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
                    sweep_inputs(self.db, self.settings, utcnow())
                    last_sweep = time.monotonic()
                self.ticks += 1
                wait = self._seconds_to_next_due()
            except Unavailable:
                wait = self.settings.tick_seconds  # logged once by the database
            except Exception:
                log.exception("tick failed; trying again")
                wait = self.settings.tick_seconds
            self._wake.wait(wait)

    def _seconds_to_next_due(self) -> float:
        """Until the next fire or retry is due (at most ``tick_seconds``): the ticker wakes
        at that instant rather than on the next period."""
        due = next_due(self.db)
        if due is None:
            return self.settings.tick_seconds
        until = (due - utcnow()).total_seconds() + 0.001  # a timer may wake a hair early
        return min(max(until, 0.0), self.settings.tick_seconds)
