"""The history database goes away and comes back: runs are recorded once, as they
happened, nothing runs twice, nothing hangs, and each process says so in two log lines.

Each test stops a PostgreSQL server of its own (``own_pg``) with SIGKILL, as a crash or a
lost network would, and starts it again on the same port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from jupyter_sched.clock import utcnow
from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.lifecycle import claim
from jupyter_sched.models import Run
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker
from jupyter_sched.worker import Worker

from .conftest import FAST, OWNER, REPO, durable_database, wait_for_run, wait_until
from .servers import PostgresServer

pytestmark = pytest.mark.postgres

SLEEP = "tests/notebooks/sleep.ipynb"
HELLO = "notebooks/hello.ipynb"
#: Long enough for every heartbeat to be older than two leases when the database returns.
OUTAGE_SECONDS = 8.0
OUTAGE_STARTS = "history database is unavailable"
OUTAGE_ENDS = "history database is available again"


def outage_settings(tmp_path: Path, server: PostgresServer, **changes: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db_url=durable_database(server),
        root_dir=REPO,
        secret="test-secret",
        **{**FAST, **changes},  # type: ignore[arg-type]
    )


@pytest.fixture
def outage_service(tmp_path: Path, own_pg: PostgresServer) -> Iterator[Service]:
    service = Service.open(outage_settings(tmp_path, own_pg))
    yield service
    service.db.dispose()


class Process:
    """A ``jupyter sched -v ...`` subprocess of the deployment, logging to a file."""

    def __init__(self, settings: Settings, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_sched.cli", "-v", *args],
                env={**os.environ, **settings.worker_environ()},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self, start: int = 0, end: int | None = None) -> str:
        return self.log.read_bytes()[start:end].decode("utf-8", errors="replace")

    def size(self) -> int:
        return self.log.stat().st_size

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def run_log(settings: Settings, run_id: str) -> str:
    path = settings.artifacts_dir / run_id / "run.log"
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.mark.slow
def test_runs_that_end_during_an_outage_succeed_once(
    outage_service: Service, own_pg: PostgresServer, tmp_path: Path
) -> None:
    service, settings = outage_service, outage_service.settings
    worker = Process(settings, tmp_path / "worker.log", "worker", "-c", "3", "--grace", "1")
    scheduler = Process(settings, tmp_path / "scheduler.log", "scheduler")
    processes = {"worker": worker, "scheduler": scheduler}
    try:
        wait_until(lambda: service.workers(), 60, "worker registered")
        # Retries allowed: a run wrongly judged lost would be run again, and show.
        body = {"notebook": SLEEP, "retries": 2, "retry_delay_seconds": 0}
        short = [
            service.create_job(OWNER, {**body, "name": f"short {i}", "parameters": {"seconds": 2}})
            for i in range(2)
        ]
        long = service.create_job(OWNER, {**body, "name": "long", "parameters": {"seconds": 14}})
        runs = {job.id: service.run_job(OWNER, job.id).id for job in [*short, long]}
        wait_until(
            lambda: all("started" in run_log(settings, r) for r in runs.values()),
            90,
            "every notebook executing",
        )

        before = {name: p.size() for name, p in processes.items()}
        own_pg.kill()
        killed = time.monotonic()
        short_runs = [runs[job.id] for job in short]
        wait_until(
            lambda: all("finished; output at" in run_log(settings, r) for r in short_runs),
            60,
            "the short notebooks ended during the outage",
        )
        # The outage lasts OUTAGE_SECONDS at least: its length is the scenario (heartbeats
        # older than two leases when it ends), not a wait for something to happen.
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - killed)))
        during = {name: p.size() for name, p in processes.items()}
        own_pg.start()
        restarted = datetime.now(UTC)

        final = {job_id: wait_for_run(service, run_id, 90) for job_id, run_id in runs.items()}
        assert [run.status for run in final.values()] == ["succeeded"] * len(final), final
        for name, p in processes.items():
            wait_until(lambda p=p, at=before[name]: OUTAGE_ENDS in p.text(at), 30, name)
        after = {name: p.size() for name, p in processes.items()}
    finally:
        for p in processes.values():
            p.kill()

    for job_id, run in final.items():
        assert (run.status, run.attempt, run.error) == ("succeeded", 1, None), run
        # One run per fire: nothing was judged lost, nothing was retried.
        assert [r.id for r in service.list_runs(OWNER, job_id=job_id).runs] == [run.id]
        stats = service.job_stats(OWNER, job_id)
        assert (stats.runs, stats.succeeded, stats.failed) == (1, 1, 0)
    for run_id in short_runs:
        run = service.get_run(OWNER, run_id)
        # Recorded as it happened: the run ended while the database was away.
        assert run.finished_at is not None and run.finished_at < restarted
        assert run.progress.done == run.progress.total > 0
    assert final[long.id].finished_at is not None and final[long.id].finished_at > restarted

    print(f"figure: {len(short_runs)} runs ended during a {OUTAGE_SECONDS:g} s outage, "
          f"1 ran across it; all {len(final)} succeeded once")  # fmt: skip
    for name, p in processes.items():
        window = p.text(before[name], after[name])
        outage_lines = p.text(before[name], during[name]).count("\n")
        print(f"figure: {name}: {outage_lines} log lines during the outage, "
              f"{window.count(chr(10))} until it had recovered")  # fmt: skip
        assert window.count(OUTAGE_STARTS) == 1, window
        assert window.count(OUTAGE_ENDS) == 1, window
        assert "Traceback" not in window, window
        assert " ERROR " not in window, window


def test_a_worker_started_during_an_outage_joins_when_the_database_answers(
    outage_service: Service, own_pg: PostgresServer, tmp_path: Path
) -> None:
    service, settings = outage_service, outage_service.settings
    own_pg.kill()
    worker = Process(settings, tmp_path / "worker.log", "worker", "-c", "1", "--grace", "1")
    try:
        wait_until(
            lambda: OUTAGE_STARTS in worker.text() or worker.proc.poll() is not None,
            60,
            "the worker met the outage",
        )
        assert worker.proc.poll() is None, worker.text()  # it waits; it did not exit
        own_pg.start()
        wait_until(lambda: service.workers(), 60, "worker registered")
        run = service.run_notebook(OWNER, HELLO, {"name": "late"})
        assert wait_for_run(service, run.id, 90).status == "succeeded"
    finally:
        worker.kill()
    log = worker.text()
    assert log.count(OUTAGE_STARTS) == 1 and log.count(OUTAGE_ENDS) == 1, log
    assert "Traceback" not in log, log


def test_a_run_taken_from_the_queue_during_an_outage_runs_once_it_answers(
    outage_service: Service, own_pg: PostgresServer
) -> None:
    service = outage_service
    run = service.run_notebook(OWNER, HELLO, {"name": "later"}, dispatch=False)
    settings = service.settings.replace(prestart_kernels=False)
    worker = Worker(settings, Database(settings.database_url))
    errors: list[BaseException] = []

    def consume() -> None:  # what a consumer thread does with a message from the queue
        try:
            worker.execute(run.id)
        except BaseException as exc:
            errors.append(exc)

    refused: list[BaseException] = []  # the worker's attempts the database did not answer
    event.listen(
        worker.db.engine, "handle_error", lambda ctx: refused.append(ctx.original_exception)
    )
    own_pg.kill()
    thread = threading.Thread(target=consume)
    thread.start()
    try:
        # The claim met the outage, and was tried again: the worker's only use of its
        # database here is this claim.
        wait_until(lambda: len(refused) >= 2 or not thread.is_alive(), 60, "the claim tried twice")
        assert not worker.db.availability.available
        assert errors == [] and thread.is_alive()  # it waits; it did not drop the run
    finally:
        own_pg.start()
    thread.join(120)
    assert not thread.is_alive() and errors == []
    done = service.get_run(OWNER, run.id)
    assert (done.status, done.worker_id, done.attempt) == ("succeeded", worker.id, 1), done
    worker.db.dispose()


def test_a_deadline_passing_during_an_outage_stops_the_run_all_the_same(
    outage_service: Service, own_pg: PostgresServer
) -> None:
    service, settings = outage_service, outage_service.settings
    worker = Worker(settings, service.db)
    worker.start()
    try:
        job = service.create_job(
            OWNER,
            {"name": "slow", "notebook": SLEEP, "parameters": {"seconds": 600},
             "timeout_seconds": 4},
        )  # fmt: skip
        run_id = service.run_job(OWNER, job.id).id
        wait_until(lambda: "started" in run_log(settings, run_id), 60, "executing")
        own_pg.kill()
        try:
            wait_until(
                lambda: "finished; output at" in run_log(settings, run_id),
                30,
                "the kernel stopped at its deadline, with the database away",
            )
        finally:
            own_pg.start()
        done = wait_for_run(service, run_id, 60)
    finally:
        worker.stop(grace_seconds=0)
    assert done.status == "timed_out" and done.error is not None, done
    assert done.error.ename == "Timeout"
    assert "stopping: the run exceeded its timeout" in run_log(settings, run_id)
    assert [r.id for r in service.list_runs(OWNER, job_id=job.id).runs] == [run_id]


def test_after_an_outage_the_reaper_waits_for_heartbeats_to_resume(
    outage_service: Service, own_pg: PostgresServer
) -> None:
    service, settings = outage_service, outage_service.settings
    job = service.create_job(
        OWNER, {"name": "j", "notebook": HELLO, "retries": 1, "retry_delay_seconds": 0}
    )
    # Two runs held by workers (nobody consumes the queue here): one whose worker lives
    # through the outage, one whose worker died during it.
    alive, dead = (service.run_job(OWNER, job.id).id for _ in range(2))
    now = utcnow()
    assert claim(service.db, alive, "w-alive", now) and claim(service.db, dead, "w-dead", now)
    heartbeat(service, alive, dead)
    ticker = Ticker(service.db, service.queues, settings)
    ticker.start()
    try:
        own_pg.kill()
        # The outage outlasts a lease (every heartbeat is now older than one): its length
        # is the scenario, not a wait for an event.
        time.sleep(2 * settings.lease_seconds)
        own_pg.start()
        ticks = ticker.ticks
        wait_until(lambda: ticker.ticks >= ticks + 3, 30, "ticks after the outage")
        # Not judged yet: the workers could not heartbeat only because the database was away.
        assert status(service, alive) == status(service, dead) == "running"

        def alive_beats_until_dead_is_judged() -> bool:
            heartbeat(service, alive)
            return status(service, dead) != "running"

        wait_until(alive_beats_until_dead_is_judged, 4 * settings.lease_seconds, "dead reaped")
    finally:
        ticker.stop()
    assert status(service, alive) == "running"
    lost = service.get_run(OWNER, dead)
    assert lost.status == "lost" and lost.error is not None and lost.error.ename == "WorkerLost"


def heartbeat(service: Service, *run_ids: str) -> None:
    from sqlalchemy import update

    with service.db.write() as session:
        session.execute(update(Run).where(Run.id.in_(run_ids)).values(heartbeat_at=utcnow()))


def status(service: Service, run_id: str) -> str:
    return service.get_run(OWNER, run_id).status
