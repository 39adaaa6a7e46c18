"""The ticker at scale: the 6 a.m. rush, ticks beside a long queue, catch-up, lateness.

Fills one history database (a SQLite file, or a throwaway PostgreSQL server with
``--db postgres``, then with a throwaway Redis as the queue, as on a hub) with the API
benchmark's history (``--jobs`` jobs, ``--runs`` runs; ``bench/api_latency.py`` fills it),
then times the ticker's functions in this process with ``now`` passed in:

- ``idle tick``: a tick with nothing due (and how many write transactions it opened);
- ``rush``: ``--rush`` jobs on ``0 6 * * *`` all due at 06:00, one tick: every fire
  inserted, snapshotted and enqueued; fires per second and the longest write transaction
  (what API writes and worker heartbeats may wait behind on SQLite);
- ``tick, runs queued``: ticks while the rush's runs wait in the queue (reconcile apart);
- ``catch-up``: ``--catch-up`` interval jobs and as many cron jobs, each 1,000 fires behind
  (misfire ``run_once``): time per job of the pass that collapses them;
- ``lateness``: on a fresh database, the ticker thread on the real clock with
  ``--lateness-jobs`` jobs firing every 2 s at scattered instants for ``--lateness-seconds``:
  scheduled → queued (handed to the queue); with ``--worker``, also scheduled → running for
  one job every 3 s on an idle embedded deployment of its own (ticker, one worker thread,
  real kernels).

Usage::

    python bench/ticker_scale.py [--db sqlite|postgres] [--jobs 100000] [--runs 1000000]
        [--rush 10000] [--catch-up 200] [--lateness-seconds 20] [--worker] [--json PATH]

``make bench-ticker`` runs it at full size on SQLite. The targets are printed with each
figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api_latency import OWNER, fill
from figures import percentile
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.dispatch import reconcile
from jupyter_sched.models import Job, Run
from jupyter_sched.queue import Queues
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker, fire_due_jobs, tick

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import postgres_server, redis_server  # noqa: E402 - after the path is set

RUSH = datetime(2025, 10, 28, 6, 0, tzinfo=UTC)  # before every filled job's next fire
CATCH_UP = RUSH + timedelta(days=2)
MISSED = 1000
TARGETS = {
    "idle_tick_ms": 5.0,
    "fires_per_s": 5000.0,
    "queued_tick_ms": 20.0,
    "catch_up_ms_per_job": 5.0,
    "lateness_p95_s": 0.2,
}


class TimedDatabase(Database):
    """A :class:`Database` that records how long each write transaction lasts."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writes: list[float] = []

    @contextmanager
    def write(self) -> Iterator[Session]:
        start = time.perf_counter()
        try:
            with super().write() as session:
                yield session
        finally:
            self.writes.append(time.perf_counter() - start)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def make_due(db: Database, count: int, offset: int, values: dict[str, Any]) -> list[str]:
    """Give ``count`` filled jobs (from the ``offset``-th) the column ``values``."""
    with db.engine.begin() as conn:
        ids = list(conn.scalars(select(Job.id).order_by(Job.id).offset(offset).limit(count)))
        for start in range(0, len(ids), 5000):
            conn.execute(update(Job).where(Job.id.in_(ids[start : start + 5000])).values(values))
    return ids


def idle_ticks(db: TimedDatabase, queues: Queues, settings: Settings, now: datetime) -> dict:
    tick(db, queues, settings, now, reconcile_queue=False)  # warm caches and statements
    db.writes.clear()
    cpu = time.process_time()
    times = [
        timed(lambda: tick(db, queues, settings, now, reconcile_queue=False))[0] for _ in range(30)
    ]
    cpu = (time.process_time() - cpu) / len(times)
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000,
            "cpu_ms": cpu * 1000, "write_transactions": len(db.writes)}  # fmt: skip


def rush(db: TimedDatabase, queues: Queues, settings: Settings, size: int) -> dict:
    cron = {"kind": "cron", "cron": "0 6 * * *", "timezone": "UTC"}
    make_due(db, size, 1, {"trigger": cron, "trigger_kind": "cron", "next_fire_at": RUSH})
    db.writes.clear()
    cpu = time.process_time()
    elapsed, report = timed(lambda: tick(db, queues, settings, RUSH, reconcile_queue=False))
    cpu = time.process_time() - cpu
    with db.read() as session:
        snapshots = session.scalar(
            select(func.count(func.distinct(Run.input_ref))).where(Run.id.in_(report.fired[:500]))
        )
    return {
        "fires": len(report.fired), "enqueued": len(report.dispatched),
        "seconds": elapsed, "fires_per_s": len(report.fired) / elapsed,
        "cpu_seconds": cpu, "fires_per_cpu_s": len(report.fired) / cpu,
        "longest_write_s": max(db.writes, default=0.0), "write_transactions": len(db.writes),
        "distinct_snapshots_of_500": snapshots,
    }  # fmt: skip


def queued_ticks(db: Database, queues: Queues, settings: Settings) -> dict:
    times = []
    cpu = time.process_time()
    for k in range(1, 21):
        now = RUSH + timedelta(seconds=k)
        times.append(
            timed(lambda now=now: tick(db, queues, settings, now, reconcile_queue=False))[0]
        )
    cpu = (time.process_time() - cpu) / len(times)
    later = RUSH + timedelta(seconds=settings.reconcile_seconds + 30)
    pass_s, again = timed(
        lambda: reconcile(db, queues, later, older_than=settings.reconcile_seconds)
    )
    with db.read() as session:
        queued = session.scalar(select(func.count()).where(Run.status == "queued"))
    return {"queued": queued, "median_ms": statistics.median(times) * 1000,
            "max_ms": max(times) * 1000, "cpu_ms": cpu * 1000, "reconcile_ms": pass_s * 1000,
            "reconciled": len(again)}  # fmt: skip


def catch_up(db: Database, settings: Settings, size: int, first: int) -> dict:
    with db.engine.begin() as conn:  # the rush's jobs are not part of this figure
        conn.execute(update(Job).where(Job.status == "active").values(status="paused"))
    figures = {}
    for index, (kind, trigger) in enumerate(
        (
            ("interval", {"kind": "interval", "every_seconds": 60}),
            ("cron", {"kind": "cron", "cron": "* * * * *", "timezone": "UTC"}),
        )
    ):
        behind = CATCH_UP - timedelta(minutes=MISSED) + timedelta(seconds=30 * index)
        values = {"trigger": trigger, "trigger_kind": kind, "next_fire_at": behind,
                  "status": "active",
                  "created_at": behind - timedelta(days=1)}  # fmt: skip
        ids = make_due(db, size, first + index * size, values)
        if kind == "cron":  # on the minute, as its fires are
            with db.engine.begin() as conn:
                conn.execute(
                    update(Job).where(Job.id.in_(ids)).values(next_fire_at=behind.replace(second=0))
                )
        now = CATCH_UP + timedelta(seconds=index)
        cpu = time.process_time()
        elapsed, report = timed(lambda now=now: fire_due_jobs(db, settings, now))
        cpu = time.process_time() - cpu
        figures[kind] = {"jobs": len(ids), "runs": len(report.fired),
                         "missed_records": len(report.skipped),
                         "ms_per_job": elapsed * 1000 / max(len(ids), 1),
                         "cpu_ms_per_job": cpu * 1000 / max(len(ids), 1)}  # fmt: skip
    return figures


def lateness(work: Path, seconds: float, jobs: int) -> dict:
    """Scheduled → queued on the real clock, ``jobs`` jobs firing every 2 s."""
    url = f"sqlite:///{work / 'lateness.db'}"
    settings = Settings(data_dir=work / "lateness", db_url=url, root_dir=REPO)
    db = Database(url)
    db.upgrade()
    service = Service(settings, db)
    queues = Queues(settings)
    ticker = Ticker(db, queues, settings)
    service.on_change = ticker.wake
    ticker.start()
    figures: dict[str, Any] = {}
    try:
        start = datetime.now(UTC) + timedelta(seconds=jobs / 50)  # after the jobs are made
        for i in range(jobs):  # interval fires count from creation: scattered instants
            service.create_job(
                OWNER,
                {"name": f"late {i}", "notebook": "notebooks/hello.ipynb",
                 "trigger": {"kind": "interval", "every_seconds": 2},
                 "start_at": (start + timedelta(seconds=1 + 2 * i / jobs)).isoformat()},
            )  # fmt: skip
        time.sleep(seconds)
        with db.write() as session:
            session.execute(update(Job).values(status="paused"))
        with db.read() as session:
            late = [
                (enqueued - scheduled).total_seconds()
                for scheduled, enqueued in session.execute(
                    select(Run.scheduled_for, Run.enqueued_at).where(Run.enqueued_at.is_not(None))
                )
            ]
        figures["queued"] = {"fires": len(late), "p50_s": percentile(late, 0.5),
                             "p95_s": percentile(late, 0.95), "max_s": max(late)}  # fmt: skip
    finally:
        ticker.stop()
        queues_flush(queues)
        db.dispose()
    return figures


def running_lateness(work: Path, fires: int = 20, every_seconds: int = 3) -> dict:
    """Scheduled → running: one job every ``every_seconds`` on an idle embedded deployment
    of its own (ticker and one worker thread, real kernels), as ``jupyter lab`` runs it.

    The notebook ends well within the period, so each fire finds the worker idle with
    its next kernel prepared (a job is due soon): what is measured is the ticker's wake-up,
    the queue hand-off and the worker's pick-up, not a run waiting for another.
    """
    from jupyter_sched.worker import Worker

    settings = Settings(data_dir=work / "running", root_dir=REPO)
    service = Service.open(settings)
    ticker = Ticker(service.db, service.queues, settings)
    service.on_change = ticker.wake
    worker = Worker(settings, service.db, concurrency=1)
    ticker.start()
    worker.start()
    try:
        job = service.create_job(
            OWNER,
            {"name": "idle worker", "notebook": "notebooks/hello.ipynb",
             "trigger": {"kind": "interval", "every_seconds": every_seconds}},
        )  # fmt: skip
        deadline = time.monotonic() + fires * every_seconds * 4 + 60
        late: list[float] = []
        while len(late) < fires and time.monotonic() < deadline:
            time.sleep(1)
            with service.db.read() as session:
                late = [
                    (started - scheduled).total_seconds()
                    for scheduled, started in session.execute(
                        select(Run.scheduled_for, Run.started_at).where(
                            Run.job_id == job.id, Run.started_at.is_not(None)
                        )
                    )
                ]
        service.pause_job(OWNER, job.id)
    finally:
        worker.stop(grace_seconds=10)
        ticker.stop()
        service.db.dispose()
    if not late:
        raise RuntimeError("no run started: see the worker's log")
    return {"fires": len(late), "p50_s": percentile(late, 0.5),
            "p95_s": percentile(late, 0.95), "max_s": max(late)}  # fmt: skip


def queues_flush(queues: Queues) -> None:
    queues["default"].flush()


def report_line(name: str, value: float, unit: str, target: float, lower: bool = True) -> bool:
    ok = value <= target if lower else value >= target
    sign = "<=" if lower else ">="
    print(f"  {name:<34} {value:>10.2f} {unit:<8} target {sign} {target:g} {unit}: "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rush", type=int, default=10_000)
    parser.add_argument("--catch-up", type=int, default=200)
    parser.add_argument("--lateness-seconds", type=float, default=20.0)
    parser.add_argument("--lateness-jobs", type=int, default=100)
    parser.add_argument("--worker", action="store_true", help="scheduled → running too")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.jobs < args.rush + 1 + 2 * args.catch_up:
        args.jobs = args.rush + 1 + 2 * args.catch_up
        print(f"--jobs raised to {args.jobs} to hold the rush and the catch-up jobs")

    work = Path(tempfile.mkdtemp(prefix="sched-ticker-bench-"))
    figures: dict[str, Any] = {"db": args.db, "jobs": args.jobs, "runs": args.runs}
    ok = True
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        redis_url = None
        if args.db == "postgres":
            url = stack.enter_context(postgres_server()).create_database("bench")
            redis_url = stack.enter_context(redis_server()).url
        else:
            url = f"sqlite:///{work / 'history.db'}"
        db = TimedDatabase(url)
        stack.callback(db.dispose)
        db.upgrade()
        started = time.perf_counter()
        fill(db, args.jobs, args.runs)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # what a long-lived database has on its own
        print(f"{args.db}: {args.jobs} jobs and {args.runs} runs inserted in "
              f"{time.perf_counter() - started:.0f}s")  # fmt: skip
        settings = Settings(data_dir=work / "data", db_url=url, root_dir=REPO,
                            redis_url=redis_url, secret="bench" if redis_url else None)  # fmt: skip
        queues = Queues(settings)
        stack.callback(queues_flush, queues)
        # A running scheduler has its queue open: opening it (importing huey, creating its
        # tables) is not part of any figure.
        queues["default"].depth()

        figures["idle_tick"] = idle = idle_ticks(db, queues, settings, RUSH - timedelta(hours=1))
        print(f"idle tick ({args.jobs} jobs, nothing due): {idle}")
        ok &= report_line("idle tick median", idle["median_ms"], "ms", TARGETS["idle_tick_ms"])

        figures["rush"] = fired = rush(db, queues, settings, args.rush)
        print(f"rush of {args.rush} fires at once: {fired}")
        ok &= report_line("rush fires per second", fired["fires_per_s"], "fires/s",
                          TARGETS["fires_per_s"], lower=False)  # fmt: skip
        ok &= fired["enqueued"] == fired["fires"] == args.rush

        figures["queued_tick"] = queued = queued_ticks(db, queues, settings)
        print(f"ticks with the rush's runs queued: {queued}")
        ok &= report_line("tick with runs queued, median", queued["median_ms"], "ms",
                          TARGETS["queued_tick_ms"])  # fmt: skip

        figures["catch_up"] = caught = catch_up(db, settings, args.catch_up, args.rush + 1)
        print(f"catch-up, {MISSED} fires behind: {caught}")
        for kind, values in caught.items():
            ok &= report_line(f"catch-up per {kind} job", values["ms_per_job"], "ms",
                              TARGETS["catch_up_ms_per_job"])  # fmt: skip

        if args.lateness_seconds > 0:
            figures["lateness"] = late = lateness(work, args.lateness_seconds, args.lateness_jobs)
            print(f"fire lateness: {late}")
            ok &= report_line("scheduled -> queued p95", late["queued"]["p95_s"], "s",
                              TARGETS["lateness_p95_s"])  # fmt: skip
        if args.worker:
            figures["running_lateness"] = running = running_lateness(work)
            print(f"fire lateness on an idle worker: {running}")
            ok &= report_line("scheduled -> running p95", running["p95_s"], "s",
                              TARGETS["lateness_p95_s"])  # fmt: skip
        print(f"targets {'met' if ok else 'NOT all met'}")
        if args.json:
            args.json.write_text(
                json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
