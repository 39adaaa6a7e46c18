"""REST latency of the list and statistics endpoints on a large history.

Fills a history database with ``--jobs`` jobs and about ``--runs`` runs of one user (one
"busy" job holds a tenth of the runs, so that a deep page of one job's runs means
something), starts a real ``jupyter server`` with the scheduler on that database (no
worker, no ticker: nothing changes the data while it is measured) and times, over one
kept-alive HTTP connection:

- ``jobs?limit=50``, the first page and a page 90 % of the way down;
- ``runs?job_id=<busy>&limit=50``, the first page and a page 90 % of the way down;
- ``runs?job_id=<ordinary>&limit=50``;
- ``jobs/<busy>/stats`` and ``jobs/<ordinary>/stats``.

Targets: p95 <= 30 ms for list pages, <= 50 ms for statistics. ``--db postgres`` starts a
throwaway PostgreSQL server (the Debian package the tests use).

Usage::

    python bench/api_latency.py [--db sqlite|postgres] [--jobs 100000] [--runs 1000000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from figures import free_port
from sqlalchemy import func, insert, select
from ulid import ULID

from jupyter_sched.db import Database
from jupyter_sched.models import Job, JobCounts, Run

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.servers import postgres_server  # noqa: E402 - after the path is set

OWNER = "bench"
PAGE = 50
BATCH = 20_000
LIST_TARGET_MS = 30.0
STATS_TARGET_MS = 50.0
STATUSES = ["succeeded"] * 90 + ["failed"] * 7 + ["timed_out", "cancelled", "lost"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _id(at: datetime) -> str:
    return str(ULID.from_datetime(at))


def fill(db: Database, n_jobs: int, n_runs: int) -> tuple[str, str]:
    """Insert the jobs and runs; returns the ids of the busy job and of an ordinary one."""
    rng = random.Random(7)
    busy_runs = n_runs // 10
    per_job = max((n_runs - busy_runs) // max(n_jobs - 1, 1), 1)
    job_ids: list[str] = []
    rows: list[dict[str, Any]] = []
    with db.engine.begin() as conn:
        for j in range(n_jobs):
            created = T0 + timedelta(seconds=j)
            job_id = _id(created)
            job_ids.append(job_id)
            rows.append(
                {
                    "id": job_id, "name": f"report {j}", "owner": OWNER,
                    "notebook": "notebooks/sales_report.ipynb", "parameters": {"days": j % 30},
                    "kernel": None, "trigger": {"kind": "interval", "every_seconds": 3600},
                    "trigger_kind": "interval", "start_at": None, "end_at": None,
                    "max_runs": None, "fire_count": 0, "status": "active",
                    "next_fire_at": created + timedelta(days=400), "misfire": "run_once",
                    "overlap": "allow", "retries": 0, "retry_delay_seconds": 60.0,
                    "retry_backoff": 2.0, "retry_max_delay_seconds": None,
                    "timeout_seconds": None, "priority": 0, "queue": "default",
                    "tags": ["bench", f"t{j % 10}"], "output_formats": ["ipynb"],
                    "created_at": created, "updated_at": created, "version": 1,
                }
            )  # fmt: skip
            if len(rows) >= BATCH:
                conn.execute(insert(Job), rows)
                rows = []
        if rows:
            conn.execute(insert(Job), rows)
    busy, ordinary = job_ids[0], job_ids[len(job_ids) // 2]
    plan = [(busy, busy_runs)] + [(job_id, per_job) for job_id in job_ids[1:]]
    clock = T0 + timedelta(days=1)
    rows = []
    with db.engine.begin() as conn:
        for job_id, count in plan:
            for _ in range(count):
                clock += timedelta(milliseconds=rng.randint(1, 400))
                status = rng.choice(STATUSES)
                duration = rng.uniform(0.5, 30.0)
                rows.append(
                    {
                        "id": _id(clock), "job_id": job_id, "owner": OWNER,
                        "notebook": "notebooks/sales_report.ipynb", "kernel": None,
                        "scheduled_for": None, "trigger": "schedule", "attempt": 1,
                        "retry_of": None, "status": status, "parameters": {"days": 3},
                        "queue": "default", "priority": 0, "timeout_seconds": None,
                        "output_formats": ["ipynb"], "not_before": None, "queued_at": clock,
                        "enqueued_at": clock, "claimed_at": clock, "started_at": clock,
                        "heartbeat_at": clock, "finished_at": clock + timedelta(seconds=duration),
                        "duration_seconds": duration, "worker_id": "bench",
                        "cancel_requested_at": None, "progress_done": 5, "progress_total": 5,
                        "error_ename": None if status == "succeeded" else "ValueError",
                        "error_evalue": None if status == "succeeded" else "bad input",
                        "error_cell_index": None if status == "succeeded" else 3,
                        "input_ref": None, "output_ref": None, "html_ref": None, "log_ref": None,
                    }
                )  # fmt: skip
                if len(rows) >= BATCH:
                    conn.execute(insert(Run), rows)
                    rows = []
        if rows:
            conn.execute(insert(Run), rows)
    count_runs(db)
    return busy, ordinary


def count_runs(db: Database) -> None:
    """Fill the per-job counters the worker keeps as runs finish (these rows bypassed it)."""
    counts: dict[str, dict[str, Any]] = {}
    with db.engine.begin() as conn:
        grouped = conn.execute(
            select(Run.job_id, Run.status, func.count(), func.max(Run.finished_at))
            .where(Run.job_id.is_not(None))
            .group_by(Run.job_id, Run.status)
        )
        for job_id, status, count, last in grouped:
            row = counts.setdefault(
                job_id,
                {"job_id": job_id, "last_success_at": None, "last_failure_at": None}
                | dict.fromkeys(
                    ("succeeded", "failed", "timed_out", "lost", "cancelled", "skipped"), 0
                ),
            )
            row[status] = count
            key = "last_success_at" if status == "succeeded" else "last_failure_at"
            if status != "cancelled" and (row.get(key) is None or last > row[key]):
                row[key] = last
        rows = list(counts.values())
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(JobCounts), rows[start : start + BATCH])


@contextmanager
def jupyter_server(db_url: str, data_dir: Path) -> Iterator[tuple[int, str]]:
    """A ``jupyter server`` with the scheduler on ``db_url``; yields (port, token)."""
    port, token = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False", f"--ServerApp.root_dir={REPO}",
            "--ServerApp.allow_root=True",
            "--ServerApp.jpserver_extensions={'jupyter_sched': True}",
            f"--SchedApp.db_url={db_url}", f"--SchedApp.data_dir={data_dir}",
            f"--SchedApp.owner={OWNER}", "--SchedApp.embedded_workers=False",
            "--SchedApp.run_ticker=False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = get(port, token, "sched/api/health")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("jupyter server did not start")
            time.sleep(0.2)
        yield port, token
    finally:
        proc.terminate()
        proc.wait(30)


_connections: dict[int, http.client.HTTPConnection] = {}


def get(port: int, token: str, path: str) -> tuple[int, bytes]:
    conn = _connections.get(port)
    if conn is None:
        conn = _connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/{path}", headers={"Authorization": f"token {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        _connections.pop(port, None)
        raise


def cursor_at(port: int, token: str, path: str, fraction: float, total: int) -> str:
    """The cursor of the page ``fraction`` of the way down a list of ``total`` items."""
    # Cursors are ids; a page's cursor is the id of the last item of the previous page.
    # Walking there would take thousands of requests, so ask for one big page near it.
    skip = int(total * fraction)
    cursor = None
    while skip > 0:
        step = min(skip, 200)
        query = f"{path}&limit={step}" + (f"&cursor={cursor}" if cursor else "")
        status, body = get(port, token, query)
        assert status == 200, body
        page = json.loads(body)
        cursor = page["next_cursor"]
        skip -= step
    assert cursor
    return cursor


def timed(port: int, token: str, path: str, n: int) -> list[float]:
    for _ in range(10):
        get(port, token, path)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        status, body = get(port, token, path)
        samples.append((time.perf_counter() - start) * 1000)
        assert status == 200, (path, status, body[:200])
    return samples


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="sched-api-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        if args.db == "postgres":
            server = stack.enter_context(postgres_server())
            url = server.create_database("bench")
        else:
            url = f"sqlite:///{work / 'history.db'}"
        db = Database(url)
        db.upgrade()
        started = time.perf_counter()
        busy, ordinary = fill(db, args.jobs, args.runs)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # what a long-lived database has on its own
        filled = time.perf_counter() - started
        db.dispose()
        print(f"{args.db}: {args.jobs} jobs, {args.runs} runs inserted in {filled:.0f}s")

        port, token = stack.enter_context(jupyter_server(url, work / "data"))
        base = "sched/api"
        deep_jobs = cursor_at(port, token, f"{base}/jobs?", 0.9, args.jobs)
        busy_total = args.runs // 10
        deep_runs = cursor_at(port, token, f"{base}/runs?job_id={busy}", 0.9, busy_total)
        endpoints = {
            "jobs, first page": (f"{base}/jobs?limit={PAGE}", LIST_TARGET_MS),
            "jobs, deep page": (f"{base}/jobs?limit={PAGE}&cursor={deep_jobs}", LIST_TARGET_MS),
            "runs of busy job, first page": (
                f"{base}/runs?job_id={busy}&limit={PAGE}",
                LIST_TARGET_MS,
            ),
            "runs of busy job, deep page": (
                f"{base}/runs?job_id={busy}&limit={PAGE}&cursor={deep_runs}",
                LIST_TARGET_MS,
            ),
            "runs of a job": (f"{base}/runs?job_id={ordinary}&limit={PAGE}", LIST_TARGET_MS),
            "stats of busy job": (f"{base}/jobs/{busy}/stats", STATS_TARGET_MS),
            "stats of a job": (f"{base}/jobs/{ordinary}/stats", STATS_TARGET_MS),
        }
        figures: dict[str, Any] = {"db": args.db, "jobs": args.jobs, "runs": args.runs}
        print(f"{'endpoint':<32} {'p50 ms':>8} {'p95 ms':>8} {'target':>8}")
        ok = True
        for name, (path, target) in endpoints.items():
            samples = timed(port, token, path, args.requests)
            row = {"p50_ms": statistics.median(samples), "p95_ms": p95(samples), "target": target}
            figures[name] = row
            ok &= row["p95_ms"] <= target
            print(f"{name:<32} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {target:>8.0f}")
        print("targets " + ("met" if ok else "NOT met"))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
