"""A 60-run sweep on the embedded default against raw papermill with the same parallelism.

What is measured, in one process and the same run
-------------------------------------------------

``papermill``
    ``--runs`` executions of ``tests/notebooks/trivial.ipynb`` (parameter ``x`` = 0..N-1)
    by ``papermill.execute_notebook`` in ``--parallel`` worker processes
    (``concurrent.futures.ProcessPoolExecutor``, processes started and warmed up before
    the clock starts): each a fresh kernel, as the scheduler's runs are. Wall time from
    submitting the first to the last one finished.

``scheduler``
    One job with ``sweep: [{"x": 0}, ..., {"x": N-1}]`` on the embedded default (SQLite
    history, SqliteHuey queue, an in-process ticker and one worker of ``--parallel``
    threads), run now: one batch of N runs. Wall time from ``Service.run_job`` until the
    batch's progress says every run is done (polled every 50 ms).

Target: ``scheduler <= 1.2 x papermill``. The ratio is printed; the exit code is 0 whatever
it is (this is a measurement), and 1 when a run failed.

Usage::

    python bench/sweep.py [--runs 60] [--parallel 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "tests/notebooks/trivial.ipynb"
TARGET = 1.2


def papermill_run(args: tuple[str, int]) -> None:
    """One papermill execution in a pool process (papermill imported there)."""
    import papermill

    out_dir, x = args
    papermill.execute_notebook(
        str(REPO / NOTEBOOK),
        str(Path(out_dir) / f"out-{x}.ipynb"),
        parameters={"x": x},
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
    )


def papermill_wall(runs: int, parallel: int, out_dir: Path) -> float:
    with ProcessPoolExecutor(max_workers=parallel) as pool:
        # warm up every process (imports, a first kernel) before the clock starts
        list(pool.map(papermill_run, [(str(out_dir), -1 - i) for i in range(parallel)]))
        start = time.monotonic()
        list(pool.map(papermill_run, [(str(out_dir), x) for x in range(runs)]))
        return time.monotonic() - start


def scheduler_wall(runs: int, parallel: int, data_dir: Path) -> tuple[float, int]:
    """Wall time of the sweep's batch, and how many of its runs failed."""
    from jupyter_sched.config import Settings
    from jupyter_sched.service import Service
    from jupyter_sched.ticker import Ticker
    from jupyter_sched.worker import Worker

    settings = Settings(data_dir=data_dir, root_dir=REPO)
    service = Service.open(settings)
    ticker = Ticker(service.db, service.queues, settings)
    service.on_change = ticker.wake
    worker = Worker(settings, service.db, concurrency=parallel)
    ticker.start()
    worker.start()
    try:
        owner = "bench"
        warm = service.create_job(owner, {"name": "warm-up", "notebook": NOTEBOOK})
        for _ in range(parallel):  # first imports, connections and kernels, untimed
            run = service.run_job(owner, warm.id)
            while service.get_run(owner, run.id).status in ("queued", "running"):
                time.sleep(0.05)
        job = service.create_job(
            owner,
            {"name": "sweep", "notebook": NOTEBOOK, "sweep": [{"x": x} for x in range(runs)]},
        )
        start = time.monotonic()
        first = service.run_job(owner, job.id)
        assert first.batch_id is not None
        while True:
            batch = service.get_batch(owner, first.batch_id)
            if batch.progress.done == batch.total:
                return time.monotonic() - start, batch.progress.failed
            time.sleep(0.05)
    finally:
        worker.stop(grace_seconds=0)
        ticker.stop()
        service.db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="sched-bench-sweep-") as tmp:
        work = Path(tmp)
        (work / "papermill").mkdir()
        raw = papermill_wall(args.runs, args.parallel, work / "papermill")
        sched, failed = scheduler_wall(args.runs, args.parallel, work / "data")
    ratio = sched / raw
    figures = {
        "runs": args.runs, "parallel": args.parallel, "papermill_seconds": round(raw, 2),
        "scheduler_seconds": round(sched, 2), "ratio": round(ratio, 3), "target": TARGET,
        "failed": failed,
    }  # fmt: skip
    print(f"{args.runs} runs, {args.parallel} at once")
    print(f"  raw papermill ({args.parallel} processes): {raw:6.1f} s")
    print(f"  scheduler sweep (one batch):      {sched:6.1f} s")
    verdict = "within" if ratio <= TARGET else "over"
    print(f"  ratio scheduler/papermill:        {ratio:6.2f} ({verdict} the {TARGET} target)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
