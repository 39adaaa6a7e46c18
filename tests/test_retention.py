"""Retention sweeps delete old finished runs and their files, never unfinished ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jupyter_sched.artifacts import RunFolder
from jupyter_sched.lifecycle import claim, finish
from jupyter_sched.retention import prune
from jupyter_sched.service import Service
from jupyter_sched.statuses import Outcome
from jupyter_sched.ticker import Ticker

from .conftest import OWNER, wait_until
from .test_cli import sched

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def finished_runs(service: Service, job_id: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        at = T0 + timedelta(days=i)
        run = service.run_job(OWNER, job_id, now=at)
        assert claim(service.db, run.id, "w", at)
        finish(
            service.db, run.id, Outcome("succeeded"), at + timedelta(seconds=5), max_retry_delay=1
        )
        folder = RunFolder(service.settings.artifacts_dir, run.id)
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.file("output.ipynb").write_text("{}")
        ids.append(run.id)
    return ids


def test_keep_last_three(service: Service) -> None:
    job = service.create_job(OWNER, {"name": "r", "notebook": "notebooks/hello.ipynb"}, now=T0)
    old = finished_runs(service, job.id, 10)
    running = service.run_job(OWNER, job.id, now=T0)
    assert claim(service.db, running.id, "w", T0)
    settings = service.settings.replace(retention_runs=3)

    dry = prune(service.db, settings, T0 + timedelta(days=30), dry_run=True)
    assert dry.run_ids == old[:7]
    assert len(service.list_runs(OWNER, job_id=job.id).runs) == 11

    report = prune(service.db, settings, T0 + timedelta(days=30))
    assert report.run_ids == old[:7]
    left = {r.id for r in service.list_runs(OWNER, job_id=job.id).runs}
    assert left == {*old[7:], running.id}
    for run_id in old[:7]:
        assert not RunFolder(settings.artifacts_dir, run_id).path.exists()
    for run_id in old[7:]:
        assert RunFolder(settings.artifacts_dir, run_id).file("output.ipynb").exists()


def test_keep_days_never_touches_a_running_run(service: Service) -> None:
    job = service.create_job(OWNER, {"name": "r", "notebook": "notebooks/hello.ipynb"}, now=T0)
    old = finished_runs(service, job.id, 5)
    running = service.run_job(OWNER, job.id, now=T0 - timedelta(days=100))
    assert claim(service.db, running.id, "w", T0 - timedelta(days=100))
    settings = service.settings.replace(retention_days=2)
    # on Nov 6, runs finished before Nov 4 go: those of Nov 1, 2 and 3
    report = prune(service.db, settings, T0 + timedelta(days=5))
    assert report.run_ids == old[:3]
    left = {r.id for r in service.list_runs(OWNER, job_id=job.id).runs}
    assert left == {*old[3:], running.id}


def test_the_ticker_sweeps_a_jobs_own_retention(service: Service) -> None:
    """No deployment retention is set: the job's own "keep the last 2" still applies."""
    assert service.settings.retention_runs is None and service.settings.retention_days is None
    job = service.create_job(
        OWNER,
        {"name": "r", "notebook": "notebooks/hello.ipynb", "retention_runs": 2},
        now=T0,
    )
    old = finished_runs(service, job.id, 5)
    ticker = Ticker(service.db, service.queues, service.settings.replace(retention_sweep_seconds=1))
    ticker.start()
    try:
        wait_until(lambda: len(service.list_runs(OWNER, job_id=job.id).runs) == 2, 5, "the sweep")
    finally:
        ticker.stop()
    assert {r.id for r in service.list_runs(OWNER, job_id=job.id).runs} == set(old[3:])
    for run_id in old[:3]:
        assert not RunFolder(service.settings.artifacts_dir, run_id).path.exists()


def test_prune_command(tmp_path: Path) -> None:
    for _ in range(3):
        assert sched(tmp_path, "run", "notebooks/hello.ipynb", "--local").returncode == 0
    nothing = sched(tmp_path, "prune")  # no retention configured: nothing goes
    assert nothing.returncode == 0 and "deleted 0 finished run(s)" in nothing.stdout
    dry = sched(tmp_path, "prune", "--keep", "1", "--dry-run")
    assert dry.returncode == 0 and "would delete 2 finished run(s)" in dry.stdout
    done = sched(tmp_path, "prune", "--keep", "1")
    assert "deleted 2 finished run(s)" in done.stdout
    assert len(json.loads(sched(tmp_path, "runs", "list", "--json").stdout)["runs"]) == 1
