"""Kernels handed to runs ready, torn down off the run's path, prepared only when a run is
expected; workers of the embedded queue woken on enqueue, with the poll as the fallback."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import nbformat
import psutil
import pytest
from jupyter_client.manager import AsyncKernelManager

from jupyter_sched.clock import utcnow
from jupyter_sched.kernels import Reaper, kernel_process_group, shutdown_kernel
from jupyter_sched.service import Service
from jupyter_sched.wakeup import PREPARE, WAKE, Doorbell, ring, wake_dir
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_until

FRESH = "tests/notebooks/fresh_state.ipynb"
TRIVIAL = "tests/notebooks/trivial.ipynb"


def printed(service: Service, run_id: str) -> str:
    nb = nbformat.read(service.run_output(OWNER, run_id), as_version=4)
    return "".join(
        out.get("text", "") for cell in nb.cells for out in cell.get("outputs", [])
    ).strip()


def group_gone(pgid: int) -> bool:
    """No live (non-zombie) process is left in process group ``pgid``."""
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return False
        except (ProcessLookupError, psutil.Error):
            continue
    return True


@pytest.fixture
def unstarted_worker(service: Service) -> Iterator[Callable[..., Worker]]:
    """Workers to adjust before they start; all stop after the test."""
    workers: list[Worker] = []

    def make(**kwargs: object) -> Worker:
        worker = Worker(service.settings, service.db, **kwargs)  # type: ignore[arg-type]
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop(grace_seconds=0)


def test_each_prepared_kernel_serves_one_run(service: Service, worker: Worker) -> None:
    first = wait_for_run(service, service.run_notebook(OWNER, FRESH, {"tag": "one"}).id)
    assert first.status == "succeeded", first.error
    # After a run the worker keeps a kernel ready for the next one...
    wait_until(lambda: worker.kernels.prepared_count == 1, 60, "next kernel prepared")
    second = wait_for_run(service, service.run_notebook(OWNER, FRESH, {"tag": "two"}).id)
    assert second.status == "succeeded", second.error
    notebook_dir = (Path(service.settings.root_dir) / FRESH).parent.resolve()
    # ...which starts with fresh interpreter state, in the run's directory.
    assert printed(service, first.id) == f"seen=False cwd={notebook_dir}"
    assert printed(service, second.id) == f"seen=False cwd={notebook_dir}"


def test_outcome_is_recorded_while_teardown_hangs(
    service: Service, unstarted_worker: Callable[..., Worker]
) -> None:
    worker = unstarted_worker()
    release = threading.Event()
    groups: list[int | None] = []

    def hanging_teardown(km: AsyncKernelManager) -> None:
        groups.append(kernel_process_group(km))
        release.wait(120)
        shutdown_kernel(km)

    worker.kernels.reaper = Reaper(hanging_teardown)
    worker.start()
    try:
        run = wait_for_run(service, service.run_notebook(OWNER, TRIVIAL, {"x": 3}).id)
        assert run.status == "succeeded", run.error
        wait_until(lambda: groups, 10, "teardown started")
        assert not release.is_set()  # the teardown still hangs, the outcome is recorded
        pgid = groups[0]
        assert pgid is not None
        # The kernel's process group was killed before it was handed to the reaper.
        wait_until(lambda: group_gone(pgid), 10, "kernel process group killed")
    finally:
        release.set()


def test_worker_takes_work_when_wake_ups_are_lost(
    service: Service, unstarted_worker: Callable[..., Worker]
) -> None:
    worker = unstarted_worker(concurrency=1)
    worker.start()
    assert worker.doorbell is not None and worker.doorbell.path is not None
    worker.doorbell.path.unlink()  # no datagram reaches the worker any more
    run = wait_for_run(service, service.run_notebook(OWNER, TRIVIAL, {"x": 4}).id)
    assert run.status == "succeeded", run.error


def test_doorbell_wakes_its_queue_and_takes_hints(tmp_path: Path) -> None:
    hints: list[bool] = []
    bell = Doorbell(tmp_path, lambda: hints.append(True))
    assert bell.open()
    try:
        default, other = bell.event("default"), bell.event("other")
        ring(tmp_path, WAKE + b"default")
        wait_until(default.is_set, 10, "queue woken")
        assert not other.is_set()
        ring(tmp_path, PREPARE)
        wait_until(lambda: hints, 10, "hint received")
        wait_until(other.is_set, 10, "every queue woken to prepare")
    finally:
        bell.close()
    assert bell.path is not None and not bell.path.exists()


def test_ringing_removes_the_socket_of_a_dead_worker(tmp_path: Path) -> None:
    folder = wake_dir(tmp_path)
    folder.mkdir(parents=True)
    stale = folder / "1-dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # bound, then gone without unlinking: as after a SIGKILL
    ring(tmp_path, WAKE + b"default")
    assert not stale.exists()


def test_a_long_data_dir_gets_wake_ups_too(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    hints: list[bool] = []
    bell = Doorbell(deep, lambda: hints.append(True))
    assert bell.open()
    try:
        ring(deep, PREPARE)
        wait_until(lambda: hints, 10, "hint received")
    finally:
        bell.close()


def test_idle_worker_prepares_kernels_only_while_a_run_is_expected(
    service: Service, unstarted_worker: Callable[..., Worker]
) -> None:
    worker = unstarted_worker(concurrency=1)
    worker.kernels.expect_seconds = 2.0
    worker.start()
    # Nothing due, nothing ran: no kernel.
    assert worker.kernels.prepared_count == 0
    # A user opens the scheduling dialog: the worker prepares one.
    service.preview({"trigger": {"kind": "interval", "every_seconds": 60}})
    wait_until(lambda: worker.kernels.prepared_count == 1, 60, "kernel prepared on the hint")
    # Nothing comes: it is dropped again.
    wait_until(lambda: worker.kernels.prepared_count == 0, 60, "kernel dropped")


def test_a_job_due_soon_makes_the_worker_prepare_a_kernel(
    service: Service, unstarted_worker: Callable[..., Worker]
) -> None:
    worker = unstarted_worker(concurrency=1)
    worker.start()
    at = (utcnow() + timedelta(seconds=90)).isoformat()
    service.create_job(
        OWNER, {"name": "soon", "notebook": TRIVIAL, "trigger": {"kind": "once", "at": at}}
    )
    wait_until(lambda: worker.kernels.prepared_count == 1, 60, "kernel prepared for the job")
