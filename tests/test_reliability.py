"""Runs never vanish, never hang and leave no process behind.

Real worker processes are killed with SIGKILL, Redis is killed without persistence,
kernels are timed out and cancelled; every scenario asserts its measured figure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import select

from jupyter_sched.config import Settings
from jupyter_sched.errors import Conflict
from jupyter_sched.lifecycle import claim, finish, request_cancel
from jupyter_sched.models import Run
from jupyter_sched.schemas import Run as RunOut
from jupyter_sched.service import Service
from jupyter_sched.statuses import Outcome
from jupyter_sched.ticker import Ticker
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_for_worker_process, wait_until
from .servers import RedisServer, pid_alive

SLEEP = "tests/notebooks/sleep.ipynb"
HELLO = "notebooks/hello.ipynb"


class Processes:
    """Worker and ticker subprocesses of one test, all killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, settings: Settings, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings.worker_environ()}
        log = open(self.tmp_path / f"proc-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_sched.cli", "-v", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def worker(self, service: Service, *args: str) -> subprocess.Popen[bytes]:
        proc = self.spawn(service.settings, "worker", "-c", "1", *args)
        wait_for_worker_process(service, proc, self.log_of(proc))
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> Path:
        """The file that ``proc``'s output goes to."""
        return self.tmp_path / f"proc-{self.procs.index(proc)}.log"

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def run_status(service: Service, run_id: str) -> str:
    return service.get_run(OWNER, run_id).status


def child_pid_of(marker: Path, timeout: float = 30) -> int:
    wait_until(
        lambda: marker.exists() and marker.read_text().strip(), timeout, "cell child started"
    )
    return int(marker.read_text())


def sleep_job(service: Service, marker: Path, seconds: int, **fields: object) -> str:
    body = {
        "name": "sleeper",
        "notebook": SLEEP,
        "parameters": {"seconds": seconds, "marker_path": str(marker)},
    }
    return service.create_job(OWNER, {**body, **fields}).id


def retry_of(service: Service, run_id: str) -> RunOut | None:
    return next((r for r in service.list_runs(OWNER).runs if r.retry_of == run_id), None)


@pytest.mark.slow
def test_killed_worker_run_is_lost_then_retried_elsewhere(
    service: Service, ticker: Ticker, processes: Processes, tmp_path: Path
) -> None:
    marker = tmp_path / "child.pid"
    job_id = sleep_job(service, marker, seconds=6, retries=1, retry_delay_seconds=0)
    victim = processes.worker(service)
    run = service.run_job(OWNER, job_id)
    child = child_pid_of(marker)
    kernel = os.getpgid(child)  # the kernel leads the process group its cells run in
    marker.unlink()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    lease = service.settings.lease_seconds
    # Deadlines for a hang, not speed figures: what is checked is who ended it and why.
    to_lost = wait_until(lambda: run_status(service, run.id) == "lost", 2 * lease, "run lost")
    gone = wait_until(lambda: not pid_alive(child) and not pid_alive(kernel), 30, "processes gone")
    print(f"figure: lost {to_lost:.2f}s after SIGKILL (lease {lease}s); gone in {gone:.2f}s")
    lost = service.get_run(OWNER, run.id)
    # The reaper ended it, with its reason, once the lease had run out since the last beat.
    assert lost.error and lost.error.ename == "WorkerLost"
    assert lost.error.evalue == f"no heartbeat from the run's worker for {lease:g} s"
    with service.db.read() as session:
        last_beat = session.scalar(select(Run.heartbeat_at).where(Run.id == run.id))
    assert last_beat is not None and lost.finished_at is not None
    assert lost.finished_at - last_beat >= timedelta(seconds=lease), (last_beat, lost)

    rescuer = processes.worker(service)
    wait_until(lambda: retry_of(service, run.id), 5, "retry created")
    retry = retry_of(service, run.id)
    assert retry is not None and retry.attempt == 2
    done = wait_for_run(service, retry.id, timeout=60)
    assert done.status == "succeeded", done.error
    assert done.worker_id and str(rescuer.pid) in done.worker_id
    assert service.list_runs(OWNER, status="running").runs == []


def test_killed_after_dequeue_or_before_first_heartbeat_is_recovered(
    service: Service, worker: Worker
) -> None:
    """The states a worker leaves when killed between dequeue and claim, or between claim
    and its first heartbeat: the message is gone, or the run is claimed and silent."""
    job = service.create_job(
        OWNER, {"name": "hello", "notebook": HELLO, "retries": 1, "retry_delay_seconds": 0}
    )
    dequeued = service.run_job(OWNER, job.id, now=datetime.now(UTC))
    # a message taken by a worker that died: the queue no longer has it
    service.queues["default"].flush()
    claimed = service.run_job(OWNER, job.id)
    start = time.monotonic()
    # claimed by a worker that died before its first heartbeat
    with service.db.write() as session:
        session.get(Run, claimed.id)
    assert claim(service.db, claimed.id, "dead-worker", datetime.now(UTC)) or (
        run_status(service, claimed.id) != "queued"
    )
    recovered = wait_for_run(service, dequeued.id, timeout=120)
    assert recovered.status == "succeeded", recovered.error
    print(f"figure: re-dispatched after {time.monotonic() - start:.2f}s")
    final = wait_for_run(service, claimed.id, timeout=30)
    if final.worker_id == "dead-worker":
        assert final.status == "lost"
        wait_until(lambda: retry_of(service, claimed.id), 10, "retry of the silent run")
        retry = retry_of(service, claimed.id)
        assert retry is not None
        assert wait_for_run(service, retry.id).status == "succeeded"
    else:  # the real worker claimed it first; nothing was lost
        assert final.status == "succeeded"


def test_killed_consumer_takes_no_more_work(
    service: Service, ticker: Ticker, processes: Processes
) -> None:
    victim = processes.worker(service)
    victim.send_signal(signal.SIGKILL)
    victim.wait(5)
    assert not pid_alive(victim.pid)
    runs = [service.run_notebook(OWNER, HELLO, {"name": str(i)}) for i in range(3)]
    # Time for anything left of the dead worker to take them: the ticker passed over them
    # again and again, reconciling the queue (past its reconcile_seconds) more than once.
    ticks = ticker.ticks
    wait_until(lambda: ticker.ticks >= ticks + 30, 30, "thirty ticks with the runs queued")
    assert all(run_status(service, r.id) == "queued" for r in runs)
    # Their messages wait in the queue, untaken (and none was handed over twice).
    assert service.queues["default"].pending_ids() == {r.id for r in runs}
    assert service.queues["default"].depth() == len(runs)
    processes.worker(service)
    for run in runs:
        done = wait_for_run(service, run.id)
        assert done.status == "succeeded" and str(victim.pid) not in (done.worker_id or "")


def test_timeout_stops_the_run_and_its_processes(
    service: Service, worker: Worker, tmp_path: Path
) -> None:
    marker = tmp_path / "child.pid"
    job_id = sleep_job(service, marker, seconds=600, timeout_seconds=3)
    run = service.run_job(OWNER, job_id)
    child = child_pid_of(marker)
    kernel = os.getpgid(child)
    # Long before the notebook's 600 s sleep would end (a deadline, not a speed figure).
    final = wait_for_run(service, run.id, timeout=120)
    assert final.started_at and final.finished_at
    took = (final.finished_at - final.started_at).total_seconds()
    print(f"figure: timed_out {took:.2f}s after start (timeout 3s)")
    assert final.status == "timed_out", f"{final.status} after {took:.2f}s"
    assert took >= 3, f"stopped {took:.2f}s after start, before its 3 s timeout"
    assert final.error and final.error.ename == "Timeout"
    wait_until(lambda: not pid_alive(child) and not pid_alive(kernel), 30, "processes gone")
    nb = nbformat.read(service.run_output(OWNER, run.id), as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "started" in printed and "child pid" in printed and "done" not in printed


def test_cancel_queued_run_never_starts(service: Service) -> None:
    run = service.run_notebook(OWNER, HELLO)
    cancelled = service.cancel_run(OWNER, run.id)
    assert cancelled.status == "cancelled" and cancelled.started_at is None
    start_worker = Worker(service.settings, service.db)
    start_worker.start()
    try:
        # The queue still delivers the id and the claim refuses it: a run queued after it
        # is taken (one thread, in order) only once the worker has dealt with it.
        later = service.run_notebook(OWNER, HELLO, {"name": "later"})
        assert wait_for_run(service, later.id).status == "succeeded"
        assert service.queues["default"].depth() == 0
        after = service.get_run(OWNER, run.id)
        assert after.status == "cancelled" and after.started_at is None
    finally:
        start_worker.stop(grace_seconds=0)
    with pytest.raises(Conflict, match="already finished"):
        service.cancel_run(OWNER, run.id)


def test_cancel_running_run_from_another_process(
    service: Service, worker: Worker, tmp_path: Path
) -> None:
    marker = tmp_path / "child.pid"
    run = service.run_job(OWNER, sleep_job(service, marker, seconds=600))
    child = child_pid_of(marker)
    kernel = os.getpgid(child)
    env = {**os.environ, **service.settings.worker_environ(), "JUPYTER_SCHED_USER": OWNER}
    cli = subprocess.run(
        [sys.executable, "-m", "jupyter_sched.cli", "runs", "cancel", run.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    final = wait_for_run(service, run.id, timeout=120)
    with service.db.read() as session:
        requested = session.scalar(select(Run.cancel_requested_at).where(Run.id == run.id))
    assert requested and final.finished_at
    took = (final.finished_at - requested).total_seconds()
    print(f"figure: cancelled {took:.2f}s after the request from another process")
    assert final.status == "cancelled", f"{final.status} {took:.2f}s after request"
    wait_until(lambda: not pid_alive(child) and not pid_alive(kernel), 30, "processes gone")
    nb = nbformat.read(service.run_output(OWNER, run.id), as_version=4)
    assert "started" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_deleting_a_job_stops_its_running_run_and_leaves_no_files(
    service: Service, worker: Worker, tmp_path: Path
) -> None:
    marker = tmp_path / "child.pid"
    job_id = sleep_job(service, marker, seconds=600)
    run = service.run_job(OWNER, job_id)
    child = child_pid_of(marker)
    kernel = os.getpgid(child)
    started = time.monotonic()
    service.delete_job(OWNER, job_id)
    wait_until(lambda: not pid_alive(child) and not pid_alive(kernel), 30, "processes gone")
    print(f"figure: the run's processes gone {time.monotonic() - started:.2f}s after the delete")
    wait_until(lambda: not worker.active, 5, "the worker lets go of the run")
    folder = service.settings.artifacts_dir / run.id
    wait_until(lambda: not folder.exists(), 5, "the run's folder is gone")
    assert service.list_runs(OWNER).runs == []


def test_kernel_that_kills_itself_fails_the_run(service: Service, worker: Worker) -> None:
    run = wait_for_run(service, service.run_notebook(OWNER, "tests/notebooks/kill_kernel.ipynb").id)
    assert run.status == "failed"
    assert run.error and run.error.ename == "DeadKernelError"
    assert "kernel died" in run.error.evalue


def test_graceful_shutdown_hands_running_runs_back(
    service: Service, ticker: Ticker, processes: Processes, tmp_path: Path
) -> None:
    marker = tmp_path / "child.pid"
    job_id = sleep_job(service, marker, seconds=600, retries=1, retry_delay_seconds=60)
    proc = processes.worker(service, "--grace", "1")
    run = service.run_job(OWNER, job_id)
    child = child_pid_of(marker)
    proc.send_signal(signal.SIGTERM)
    took = wait_until(lambda: proc.poll() is not None, 120, "worker exits")
    final = service.get_run(OWNER, run.id)
    assert final.status == "lost" and final.error and final.error.ename == "WorkerShutdown"
    print(f"figure: worker stopped {took:.2f}s after SIGTERM (grace 1s), run handed back as lost")
    assert proc.returncode == 0
    assert not pid_alive(child)
    assert retry_of(service, run.id) is not None


def test_replace_cancels_the_running_run(service: Service, worker: Worker, tmp_path: Path) -> None:
    job = service.create_job(
        OWNER,
        {
            "name": "replace",
            "notebook": SLEEP,
            "parameters": {"seconds": 600, "marker_path": str(tmp_path / "child.pid")},
            "trigger": {"kind": "interval", "every_seconds": 4},
            "overlap": "replace",
        },
    )
    wait_until(lambda: len(service.list_runs(OWNER, job_id=job.id).runs) >= 2, 15, "second fire")
    first, second = reversed(service.list_runs(OWNER, job_id=job.id).runs[:2])
    service.pause_job(OWNER, job.id)
    first_final = wait_for_run(service, first.id, timeout=5)
    assert first_final.status == "cancelled"
    wait_until(lambda: run_status(service, second.id) == "running", 10, "replacement running")
    service.cancel_run(OWNER, second.id)
    assert wait_for_run(service, second.id, timeout=5).status == "cancelled"


def race_finish_and_cancel(service: Service, run_id: str) -> dict[str, object]:
    """Complete and cancel a running run at the same instant from two threads."""
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def complete() -> None:
        barrier.wait()
        results["finish"] = finish(
            service.db, run_id, Outcome("succeeded"), datetime.now(UTC), max_retry_delay=1
        )

    def cancel() -> None:
        barrier.wait()
        try:
            results["cancel"] = request_cancel(
                service.db, run_id, datetime.now(UTC), max_retry_delay=1
            )
        except Conflict as exc:
            results["cancel"] = exc

    threads = [threading.Thread(target=complete), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_cancel_racing_completion_has_one_winner(service: Service) -> None:
    outcomes = []
    for i in range(20):
        run = service.run_notebook(OWNER, HELLO, {"name": str(i)}, dispatch=False)
        assert claim(service.db, run.id, "w", datetime.now(UTC))
        results = race_finish_and_cancel(service, run.id)
        final = service.get_run(OWNER, run.id)
        assert final.status == "succeeded" and results["finish"] is not None
        with service.db.read() as session:
            assert session.get(Run, run.id).finished_at == final.finished_at  # recorded once
        outcomes.append(type(results["cancel"]).__name__)
    # the cancel either came first (a request the worker would act on) or saw a finished run
    assert set(outcomes) <= {"Run", "Conflict"}


def test_many_runs_finishing_at_once_on_sqlite(service: Service) -> None:
    if not service.db.is_sqlite:
        pytest.skip("SQLite's single writer is what this exercises")
    runs = [service.run_notebook(OWNER, HELLO, {"name": str(i)}, dispatch=False) for i in range(20)]
    for run in runs:
        assert claim(service.db, run.id, "w", datetime.now(UTC))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                service.list_runs(OWNER, limit=50)
            except BaseException as exc:
                errors.append(exc)

    barrier = threading.Barrier(len(runs))

    def complete(run_id: str) -> None:
        barrier.wait()
        try:
            finish(service.db, run_id, Outcome("succeeded"), datetime.now(UTC), max_retry_delay=1)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=complete, args=(r.id,)) for r in runs]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert len(service.list_runs(OWNER, status="succeeded").runs) == 20


@pytest.mark.slow
@pytest.mark.redis
def test_everything_killed_nothing_lost(
    service: Service, redis_srv: RedisServer, processes: Processes, tmp_path: Path
) -> None:
    """Kill -9 the ticker, both workers and Redis (no persistence) with 10 runs queued and
    2 running; after a restart every run reaches a final state exactly once."""
    redis_srv.flush()
    hub = service.settings.replace(redis_url=redis_srv.url)
    hub_service = Service(hub, service.db)
    sleeper = sleep_job(
        hub_service, tmp_path / "unused", seconds=4, retries=1, retry_delay_seconds=0
    )
    processes.spawn(hub, "scheduler")
    workers = [processes.worker(hub_service) for _ in range(2)]
    running = [hub_service.run_job(OWNER, sleeper, {"marker_path": ""}) for _ in range(2)]
    wait_until(
        lambda: all(run_status(hub_service, r.id) == "running" for r in running), 30, "2 running"
    )
    queued = [hub_service.run_notebook(OWNER, HELLO, {"name": str(i)}) for i in range(10)]
    assert all(run_status(hub_service, r.id) == "queued" for r in queued)

    for proc in processes.procs:
        proc.send_signal(signal.SIGKILL)
    redis_srv.kill()
    for proc in list(processes.procs):
        proc.wait(5)
    redis_srv.start()
    assert hub_service.queues["default"].depth() == 0  # every message is gone
    restarted = time.monotonic()
    processes.spawn(hub, "scheduler")
    for _ in workers:
        processes.worker(hub_service)

    finals = {r.id: wait_for_run(hub_service, r.id, timeout=60) for r in running + queued}
    assert all(finals[r.id].status == "succeeded" for r in queued), finals
    assert all(finals[r.id].status == "lost" for r in running)
    retries = []
    for r in running:
        wait_until(lambda r=r: retry_of(hub_service, r.id), 10, "retry")
        retry = retry_of(hub_service, r.id)
        assert retry is not None
        retries.append(wait_for_run(hub_service, retry.id, timeout=60))
    took = time.monotonic() - restarted
    assert all(r.status == "succeeded" for r in retries)
    for r in queued:  # none executed twice
        log, _ = hub_service.run_log(OWNER, r.id)
        assert log.count("starting kernel") == 1, log
    assert hub_service.list_runs(OWNER, status="running").runs == []
    assert hub_service.list_runs(OWNER, status="queued").runs == []
    print(f"figure: all 12 runs final {took:.1f}s after the restart, none executed twice")
