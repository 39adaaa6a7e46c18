"""Run latency of the scheduler against raw papermill, in one process.

What is measured
----------------
Three kinds of sample, ``--n`` of each, on ``tests/notebooks/trivial.ipynb``:

``papermill``
    One in-process ``papermill.execute_notebook(...)`` call on a fresh ``python3`` kernel:
    kernel start, parameter injection, execution, kernel shutdown, output written. This is
    what a user pays when running a notebook by hand.

``floor``
    The same call on a kernel started (and booted, untimed) before it: papermill connects
    a client, waits for the kernel to be ready and executes the cells. The floor of a run
    whose kernel is already there.

``scheduler``
    One run through the embedded default deployment (SQLite history, SqliteHuey queue,
    an in-process ticker and one worker thread): the time from just before
    ``Service.run_notebook(...)`` until a client polling ``Service.get_run`` every 5 ms
    sees the run ``succeeded``. That is everything a user of the scheduler waits for:
    validation, the history rows, the input snapshot, the queue hand-off, the worker's
    claim, the execution itself, recording the outcome, and noticing it.

Targets
-------
``--order alternate`` (the worker has a moment to prepare its next kernel between runs):
``median(scheduler) <= 1.3 x median(floor)``. ``--order blocks`` (runs back to back: the
next kernel boots while a run executes): ``median(scheduler) <= 0.6 x median(papermill)``.
``--order both`` (the default) measures both, one after the other, in the same process.

Why the kinds alternate
-----------------------
In ``alternate``, the kinds run one sample at a time, as floor, papermill, scheduler, floor,
... Machine noise (other processes, CPU frequency changes, a disk flush) then lands on all
kinds alike instead of on whichever kind happened to run during the noisy stretch, so the
ratios of the medians stay meaningful on a busy machine. The worker and the ticker are
started, and two samples of each kind are run, before anything is timed: imports, first
connections, migrations and the first prepared kernel are not part of a run's latency.

Usage::

    python bench/run_latency.py [--n 20] [--order both|alternate|blocks] [--json F] [--breakdown]

The exit code is 0 whatever the ratios (this is a measurement), and 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import papermill
from figures import summary
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from jupyter_sched.config import Settings
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker
from jupyter_sched.worker import Worker

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "tests/notebooks/trivial.ipynb"
KERNEL = "python3"
OWNER = "bench"
WARMUP = 2
POLL_SECONDS = 0.005
#: A scheduler run not finished after this long fails the benchmark.
RUN_TIMEOUT_SECONDS = 120.0
#: median(scheduler) / median(floor) when the worker had a moment to prepare.
TARGET_PREPARED = 1.3
#: median(scheduler) / median(papermill) back to back.
TARGET_BACK_TO_BACK = 0.6
#: Untimed seconds a floor sample's kernel gets to boot before the sample starts.
FLOOR_BOOT_SECONDS = 1.5


class RunFailed(RuntimeError):
    """A sample did not complete successfully."""


@dataclass
class SchedulerSample:
    """One scheduler run: total latency and where it went (seconds)."""

    total: float
    #: From the call to ``run_notebook`` until it returned (validation, rows, snapshot, enqueue).
    submit: float
    #: From ``run_notebook`` returning until the worker claimed the run (queue pickup).
    pickup: float
    #: From the claim until the outcome was recorded (kernel, execution, clean-up).
    execute: float
    #: From the outcome being recorded until the polling client saw it.
    observe: float


@dataclass
class Results:
    papermill: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    scheduler: list[SchedulerSample] = field(default_factory=list)


def papermill_sample(out_dir: Path, i: int) -> float:
    """Seconds for one in-process papermill execution of the notebook."""
    output = out_dir / f"papermill-{i}.ipynb"
    start = time.perf_counter()
    papermill.execute_notebook(
        str(REPO / NOTEBOOK),
        str(output),
        parameters={"x": i},
        kernel_name=KERNEL,
        progress_bar=False,
    )
    return time.perf_counter() - start


def floor_sample(out_dir: Path, i: int) -> float:
    """Seconds for one in-process papermill execution on an already-started kernel."""
    km = AsyncKernelManager(kernel_name=KERNEL)
    run_sync(km.start_kernel)()
    try:
        time.sleep(FLOOR_BOOT_SECONDS)  # booted before the clock starts
        output = out_dir / f"floor-{i}.ipynb"
        start = time.perf_counter()
        papermill.execute_notebook(
            str(REPO / NOTEBOOK),
            str(output),
            parameters={"x": i},
            kernel_name=KERNEL,
            progress_bar=False,
            km=km,
        )
        return time.perf_counter() - start
    finally:
        run_sync(km.shutdown_kernel)(now=True)


def scheduler_sample(service: Service, i: int) -> SchedulerSample:
    """One run through the deployment, from submission until it is seen succeeded."""
    submitted_wall = datetime.now(UTC)
    start = time.perf_counter()
    run = service.run_notebook(OWNER, NOTEBOOK, {"x": i})
    returned = time.perf_counter()
    while run.status in ("queued", "running"):
        if time.perf_counter() - start > RUN_TIMEOUT_SECONDS:
            raise RunFailed(f"run {run.id} still {run.status} after {RUN_TIMEOUT_SECONDS:g}s")
        time.sleep(POLL_SECONDS)
        run = service.get_run(OWNER, run.id)
    end = time.perf_counter()
    if run.status != "succeeded":
        error = f": {run.error.ename}: {run.error.evalue}" if run.error else ""
        raise RunFailed(f"scheduler run {run.id} ended {run.status}{error}")
    assert run.started_at is not None and run.finished_at is not None
    # Wall-clock stamps of the run row, placed on the perf_counter time line of this sample.
    started = start + (run.started_at - submitted_wall).total_seconds()
    finished = start + (run.finished_at - submitted_wall).total_seconds()
    return SchedulerSample(
        total=end - start,
        submit=returned - start,
        pickup=started - returned,
        execute=finished - started,
        observe=end - finished,
    )


@contextmanager
def deployment(data_dir: Path) -> Iterator[Service]:
    """The embedded default deployment with a ticker and one started worker."""
    settings = Settings(data_dir=data_dir, root_dir=REPO)
    service = Service.open(settings)
    ticker = Ticker(service.db, service.queues, settings)
    service.on_change = ticker.wake
    worker = Worker(settings, service.db, concurrency=1)
    ticker.start()
    try:
        worker.start()
        try:
            yield service
        finally:
            worker.stop(grace_seconds=0)
    finally:
        ticker.stop()
        service.db.dispose()


def measure(n: int, work_dir: Path, *, order: str = "alternate") -> dict[str, Results]:
    """Samples by order (``alternate``, ``blocks`` or both)."""
    out_dir = work_dir / "papermill"
    out_dir.mkdir()
    orders = ("alternate", "blocks") if order == "both" else (order,)
    measured: dict[str, Results] = {}
    with deployment(work_dir / "sched") as service:
        kinds: list[Callable[[int], Any]] = [
            lambda i: floor_sample(out_dir, i),
            lambda i: papermill_sample(out_dir, i),
            lambda i: scheduler_sample(service, i),
        ]
        for i in range(WARMUP):
            for kind in kinds:
                kind(-1 - i)
        for name in orders:
            results = measured[name] = Results()
            if name == "alternate":
                for i in range(n):
                    results.floor.append(floor_sample(out_dir, i))
                    results.papermill.append(papermill_sample(out_dir, i))
                    results.scheduler.append(scheduler_sample(service, i))
            else:
                # Each kind in one block, runs back to back: the worker's next kernel boots
                # while a run executes, and has no idle time besides.
                results.floor.extend(floor_sample(out_dir, i) for i in range(n))
                results.papermill.extend(papermill_sample(out_dir, i) for i in range(n))
                results.scheduler.extend(scheduler_sample(service, i) for i in range(n))
    return measured


def report(results: Results, *, breakdown: bool, order: str = "alternate") -> dict[str, Any]:
    pm = summary(results.papermill)
    floor = summary(results.floor)
    sched = summary([s.total for s in results.scheduler])
    vs_floor = sched["median"] / floor["median"]
    vs_papermill = sched["median"] / pm["median"]
    if order == "alternate":
        target_name, ratio, target = "scheduler/floor", vs_floor, TARGET_PREPARED
    else:
        target_name, ratio, target = "scheduler/papermill", vs_papermill, TARGET_BACK_TO_BACK
    figures: dict[str, Any] = {
        "n": len(results.papermill),
        "order": order,
        "unit": "seconds",
        "papermill": pm,
        "floor": floor,
        "scheduler": sched,
        "ratio_scheduler_floor": vs_floor,
        "ratio_scheduler_papermill": vs_papermill,
        "target": {"ratio": target_name, "at_most": target, "met": ratio <= target},
        "scheduler_phases": {
            phase: summary([getattr(s, phase) for s in results.scheduler])
            for phase in ("submit", "pickup", "execute", "observe")
        },
        "samples": {
            "papermill": results.papermill,
            "floor": results.floor,
            "scheduler": [s.total for s in results.scheduler],
        },
    }
    header = f"{'kind':<10} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}"
    print(f"run latency, trivial.ipynb, n={figures['n']} each, {order} (seconds)")
    print(header)
    for kind, row in (("papermill", pm), ("floor", floor), ("scheduler", sched)):
        print(
            f"{kind:<10} {row['median']:>8.3f} {row['p90']:>8.3f} "
            f"{row['min']:>8.3f} {row['max']:>8.3f}"
        )
    verdict = "met" if ratio <= target else "NOT met"
    print(f"median(scheduler)/median(floor)     = {vs_floor:.3f}")
    print(f"median(scheduler)/median(papermill) = {vs_papermill:.3f}")
    print(f"target: {target_name} <= {target:.2f} ({verdict})")
    if breakdown:
        print()
        print("scheduler phases (seconds)")
        print(header.replace("kind      ", "phase     "))
        for phase, row in figures["scheduler_phases"].items():
            print(
                f"{phase:<10} {row['median']:>8.3f} {row['p90']:>8.3f} "
                f"{row['min']:>8.3f} {row['max']:>8.3f}"
            )
    print()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20, help="timed samples of each kind")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--breakdown", action="store_true", help="also print where scheduler runs spend time"
    )
    parser.add_argument(
        "--order",
        choices=("both", "alternate", "blocks"),
        default="both",
        help="alternate the kinds sample by sample, run each kind back to back, or both",
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger().setLevel(logging.WARNING)

    work_dir = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    try:
        measured = measure(args.n, work_dir, order=args.order)
    except (RunFailed, papermill.PapermillExecutionError) as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    figures = {
        name: report(results, breakdown=args.breakdown, order=name)
        for name, results in measured.items()
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
