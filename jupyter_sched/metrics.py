"""Prometheus metrics of the scheduler, served on jupyter_server's ``/metrics``.

Runs finish in worker processes, possibly on other machines, so the server derives the
run metrics from the database: a :class:`RunObserver` polls the runs created recently
and the runs it saw unfinished, and counts each run once when it first sees it final.
Counters and histograms therefore count what finished while this server watched; gauges
(queue depth, running runs, active jobs, live workers) are read from the database at
each poll.

The metric objects live at module level, in prometheus_client's default registry, so
loading the extension twice in one process (tests) registers them once.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import select
from ulid import ULID

from .clock import utcnow
from .errors import Unavailable
from .models import Run
from .service import Service
from .statuses import FINAL_STATUSES

log = logging.getLogger(__name__)

RUNS_FINISHED = Counter(
    "jupyter_sched_runs",
    "Runs that reached a final state while this server watched, by status.",
    ["status"],
)
RUN_DURATION = Histogram(
    "jupyter_sched_run_duration_seconds",
    "Wall time of finished runs, from start to end, by final status.",
    ["status"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600),
)
FIRE_LATENESS = Histogram(
    "jupyter_sched_fire_lateness_seconds",
    "Delay from a schedule fire's due time to its run being queued.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
QUEUE_DEPTH = Gauge(
    "jupyter_sched_queue_depth", "Runs queued and not yet started, by queue.", ["queue"]
)
RUNS_RUNNING = Gauge("jupyter_sched_runs_running", "Runs executing now.")
ACTIVE_JOBS = Gauge("jupyter_sched_active_jobs", "Jobs whose schedule is active.")
LIVE_WORKERS = Gauge("jupyter_sched_live_workers", "Workers that heartbeated within the lease.")

#: The names under which the metrics above appear on ``/metrics``.
METRIC_NAMES = (
    "jupyter_sched_runs_total",
    "jupyter_sched_run_duration_seconds",
    "jupyter_sched_fire_lateness_seconds",
    "jupyter_sched_queue_depth",
    "jupyter_sched_runs_running",
    "jupyter_sched_active_jobs",
    "jupyter_sched_live_workers",
)

#: Runs created within this window are re-read at every poll, so that a run committed
#: late by another process (its id is older than runs already seen) is still counted.
WINDOW_SECONDS = 300.0

_COLUMNS = (Run.id, Run.status, Run.trigger, Run.queued_at, Run.scheduled_for, Run.duration_seconds)


def _ulid_floor(moment: datetime) -> str:
    """The smallest run id that can have been created at ``moment`` or later."""
    millis = max(int(moment.timestamp() * 1000), 0)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + bytes(10)))


class RunObserver:
    """Turns what it sees in the database into the module's metrics.

    :meth:`poll` is a pure step with ``now`` passed in; :meth:`start` runs it in a thread.
    The first poll takes a baseline: runs that finished before it are not counted.
    """

    def __init__(self, service: Service, interval: float = 5.0) -> None:
        self.service = service
        self.interval = interval
        #: Runs seen unfinished and not yet seen final.
        self._open: set[str] = set()
        #: Runs of the window already seen (and, when final, counted).
        self._seen: set[str] = set()
        self._final: set[str] = set()
        self._queues: set[str] = set()
        self._baseline = False
        #: Polls done (how a test or a probe knows the metrics were refreshed).
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self, now: datetime | None = None) -> None:
        """Count the runs that finished since the last poll and refresh the gauges."""
        now = now or utcnow()
        floor = _ulid_floor(now - timedelta(seconds=WINDOW_SECONDS))
        db = self.service.db
        with db.read() as session:
            if not self._baseline:
                self._open.update(
                    session.scalars(select(Run.id).where(Run.status.in_(("queued", "running"))))
                )
            rows = list(session.execute(select(*_COLUMNS).where(Run.id >= floor)).all())
            older = sorted(run_id for run_id in self._open if run_id < floor)
            for start in range(0, len(older), 500):
                chunk = older[start : start + 500]
                found = session.execute(select(*_COLUMNS).where(Run.id.in_(chunk))).all()
                rows.extend(found)
                self._open.difference_update(set(chunk) - {row.id for row in found})
        in_window = {row.id for row in rows if row.id >= floor}
        self._open.difference_update(
            {run_id for run_id in self._open if run_id >= floor} - in_window
        )  # deleted with their job
        for row in rows:
            self._observe(row, count=self._baseline)
        self._seen &= in_window | self._open
        self._final &= in_window
        self._baseline = True
        self._refresh_gauges(now)
        self.polls += 1

    def _observe(self, row: Any, *, count: bool) -> None:
        if row.id in self._final:
            return
        if row.id not in self._seen:
            self._seen.add(row.id)
            if count and row.trigger == "schedule" and row.scheduled_for is not None:
                late = (row.queued_at - row.scheduled_for).total_seconds()
                FIRE_LATENESS.observe(max(late, 0.0))
        if row.status in FINAL_STATUSES:
            self._final.add(row.id)
            self._open.discard(row.id)
            if count:
                RUNS_FINISHED.labels(status=row.status).inc()
                if row.duration_seconds is not None:
                    RUN_DURATION.labels(status=row.status).observe(row.duration_seconds)
        else:
            self._open.add(row.id)

    def _refresh_gauges(self, now: datetime) -> None:
        load = self.service.load(now=now)
        for queue in self._queues - set(load.queued):
            QUEUE_DEPTH.labels(queue=queue).set(0)
        for queue, depth in load.queued.items():
            QUEUE_DEPTH.labels(queue=queue).set(depth)
        self._queues |= set(load.queued)
        RUNS_RUNNING.set(load.running)
        ACTIVE_JOBS.set(load.active_jobs)
        LIVE_WORKERS.set(load.live_workers)

    # -- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="jupyter-sched-metrics", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            try:
                self.poll()
            except Unavailable:
                pass  # logged once by the database; the gauges keep their last values
            except Exception:
                log.exception("metrics poll failed; trying again")
            if self._stop.wait(self.interval):
                return
