"""Job changes on a long ``after`` chain and a large history: their time, and the longest
write transaction they hold.

Fills one history database (a SQLite file, or a throwaway PostgreSQL server with
``--db postgres``) with the API benchmark's history (``--jobs`` jobs and ``--runs`` runs,
one busy job holding a tenth of them; ``bench/api_latency.py`` fills it) and a chain of
``--chain`` jobs, each running after the one before. Then, through the service in this
process (what the REST handlers call, minus HTTP), times:

- ``patch head``: PATCH the first job of the chain to run after another job; the cycle
  check walks the whole chain below it (the operation of the report: 270-337 s on SQLite);
- ``patch head, cycle``: PATCH it to run after the last job of the chain (refused: a
  cycle through every job of the chain);
- ``create after tail``: create a job that runs after the last job of the chain;
- ``patch parameters``: PATCH an ordinary job's parameters (the notebook is read and checked);
- ``delete in chain``: delete (with force) a job in the middle of the chain;
- ``delete busy job``: delete the job that holds a tenth of the runs.

Every ``Database.write()`` block is timed by an instrumented ``Database`` (from the
session's start to its commit: at least as long as the transaction holds SQLite's write
lock or PostgreSQL's row locks). Targets: ``patch head`` under 1 s, and no write
transaction over 1 s.

Usage::

    python bench/dependency_chain.py [--db sqlite|postgres] [--chain 10000]
        [--jobs 100000] [--runs 1000000] [--repeat 3] [--skip NAME ...] [--json PATH]

``--skip`` leaves out operations (by the names above), e.g. the delete of the busy job on
code that takes hours for it.
"""

from __future__ import annotations

import argparse
import itertools
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
from sqlalchemy import insert
from sqlalchemy.orm import Session
from ulid import ULID

from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.errors import DependencyCycle
from jupyter_sched.models import Dependency, Job
from jupyter_sched.service import Service

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import postgres_server  # noqa: E402 - after the path is set

NOTEBOOK = "notebooks/hello.ipynb"
PATCH_TARGET_S = 1.0
WRITE_TARGET_S = 1.0
BATCH = 5_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


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


def job_row(name: str, created: datetime, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(ULID.from_datetime(created)), "name": name, "owner": OWNER,
        "notebook": NOTEBOOK, "parameters": {}, "kernel": None, "trigger": trigger,
        "trigger_kind": trigger["kind"], "start_at": None, "end_at": None, "max_runs": None,
        "fire_count": 0, "status": "active", "next_fire_at": None, "misfire": "run_once",
        "overlap": "allow", "retries": 0, "retry_delay_seconds": 60.0, "retry_backoff": 2.0,
        "retry_max_delay_seconds": None, "timeout_seconds": None, "priority": 0,
        "queue": "default", "tags": [], "output_formats": ["ipynb"], "created_at": created,
        "updated_at": created, "version": 1,
    }  # fmt: skip


def build_chain(db: Database, length: int) -> tuple[list[str], str]:
    """Insert ``length`` jobs, each after the previous one, and one unrelated job."""
    manual = {"kind": "manual"}
    rows = [job_row(f"chain {i}", T0 + timedelta(seconds=i), manual) for i in range(length)]
    for previous, row in itertools.pairwise(rows):
        row["trigger"] = {"kind": "after", "jobs": [previous["id"]], "condition": "success"}
        row["trigger_kind"] = "after"
    other = job_row("other", T0 - timedelta(days=1), manual)
    edges = [
        {"downstream_id": row["id"], "upstream_id": previous["id"], "condition": "success"}
        for previous, row in itertools.pairwise(rows)
    ]
    with db.engine.begin() as conn:
        for start in range(0, length, BATCH):
            conn.execute(insert(Job), rows[start : start + BATCH])
        conn.execute(insert(Job), [other])
        for start in range(0, len(edges), BATCH):
            conn.execute(insert(Dependency), edges[start : start + BATCH])
    return [row["id"] for row in rows], other["id"]


def measure(db: TimedDatabase, operation: Callable[[], object]) -> tuple[float, float]:
    """Seconds ``operation`` took, and its longest write transaction."""
    db.writes.clear()
    start = time.perf_counter()
    operation()
    elapsed = time.perf_counter() - start
    return elapsed, max(db.writes, default=0.0)


def operations(
    service: Service, chain: list[str], other: str, busy: str, ordinary: str
) -> dict[str, Callable[[], object]]:
    head, tail, middle = chain[0], chain[-1], chain[len(chain) // 2]

    def after(job_id: str) -> dict[str, Any]:
        return {"trigger": {"kind": "after", "jobs": [job_id], "condition": "success"}}

    def patch_cycle() -> None:
        try:
            service.update_job(OWNER, head, after(tail))
        except DependencyCycle:
            return
        raise AssertionError("a cycle through the whole chain was accepted")

    def create_after_tail() -> None:
        service.create_job(OWNER, {"name": "after tail", "notebook": NOTEBOOK, **after(tail)})

    return {
        "patch head": lambda: service.update_job(OWNER, head, after(other)),
        "patch head, cycle": patch_cycle,
        "create after tail": create_after_tail,
        "patch parameters": lambda: service.update_job(
            OWNER, ordinary, {"parameters": {"days": 5}}
        ),
        "delete in chain": lambda: service.delete_job(OWNER, middle, force=True),
        "delete busy job": lambda: service.delete_job(OWNER, busy, force=True),
    }


#: Operations that change what the next sample would measure: timed once.
ONCE = ("delete in chain", "delete busy job")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--chain", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="samples of repeatable operations")
    parser.add_argument("--skip", nargs="*", default=[], metavar="NAME")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="sched-chain-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        if args.db == "postgres":
            url = stack.enter_context(postgres_server()).create_database("bench")
        else:
            url = f"sqlite:///{work / 'history.db'}"
        db = TimedDatabase(url)
        stack.callback(db.dispose)
        db.upgrade()
        started = time.perf_counter()
        busy, ordinary = fill(db, args.jobs, args.runs)
        chain, other = build_chain(db, args.chain)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # what a long-lived database has on its own
        print(
            f"{args.db}: {args.jobs} jobs, {args.runs} runs and a chain of {args.chain} jobs "
            f"inserted in {time.perf_counter() - started:.0f}s"
        )
        settings = Settings(data_dir=work / "data", db_url=url, root_dir=REPO)
        service = Service(settings, db)
        figures: dict[str, Any] = {"db": args.db, "chain": args.chain, "jobs": args.jobs,
                                   "runs": args.runs}  # fmt: skip
        print(f"{'operation':<20} {'median s':>9} {'max s':>8} {'longest write s':>16}")
        longest_write = 0.0
        for name, operation in operations(service, chain, other, busy, ordinary).items():
            if name in args.skip:
                continue
            samples = [measure(db, operation) for _ in range(1 if name in ONCE else args.repeat)]
            times = [elapsed for elapsed, _ in samples]
            write = max(longest for _, longest in samples)
            longest_write = max(longest_write, write)
            figures[name] = {"median_s": statistics.median(times), "max_s": max(times),
                             "longest_write_s": write}  # fmt: skip
            print(f"{name:<20} {statistics.median(times):>9.3f} {max(times):>8.3f} {write:>16.3f}")
        patch = figures.get("patch head", {}).get("median_s")
        ok = longest_write <= WRITE_TARGET_S and (patch is None or patch <= PATCH_TARGET_S)
        print(
            f"longest write transaction {longest_write:.3f}s (target <= {WRITE_TARGET_S:g}s); "
            f"patch head {'-' if patch is None else f'{patch:.3f}s'} "
            f"(target <= {PATCH_TARGET_S:g}s): targets {'met' if ok else 'NOT met'}"
        )
        figures["longest_write_s"] = longest_write
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
