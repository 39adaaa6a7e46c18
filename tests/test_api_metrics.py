"""The metrics observer: runs finished by any process are counted once, from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from jupyter_sched.clock import utcnow
from jupyter_sched.lifecycle import claim, finish, new_run
from jupyter_sched.metrics import RunObserver
from jupyter_sched.models import Job
from jupyter_sched.service import Service
from jupyter_sched.statuses import Outcome

from .conftest import OWNER

HELLO = "notebooks/hello.ipynb"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def finished(service: Service, run_id: str, status: str, at: object) -> None:
    assert claim(service.db, run_id, "w", at)  # type: ignore[arg-type]
    outcome = Outcome(status, None if status == "succeeded" else "Boom", None)
    assert finish(service.db, run_id, outcome, at + timedelta(seconds=2), max_retry_delay=60)  # type: ignore[operator]


def test_runs_are_counted_once_when_they_finish(service: Service) -> None:
    now = utcnow()
    job = service.create_job(OWNER, {"name": "m", "notebook": HELLO}, now=now)
    before_baseline = service.run_job(OWNER, job.id, now=now)
    finished(service, before_baseline.id, "succeeded", now)

    observer = RunObserver(service)
    observer.poll(now)  # baseline: what finished before is not counted
    succeeded = sample("jupyter_sched_runs_total", status="succeeded")
    failed = sample("jupyter_sched_runs_total", status="failed")
    durations = sample("jupyter_sched_run_duration_seconds_count", status="succeeded")

    open_run = service.run_job(OWNER, job.id, now=now)
    observer.poll(now)
    assert sample("jupyter_sched_queue_depth", queue="default") == 1
    assert sample("jupyter_sched_active_jobs") >= 1
    finished(service, open_run.id, "succeeded", now)
    between = service.run_job(OWNER, job.id, now=now)
    finished(service, between.id, "failed", now)  # created and finished between two polls
    observer.poll(now)
    observer.poll(now)  # polling again counts nothing twice

    assert sample("jupyter_sched_runs_total", status="succeeded") == succeeded + 1
    assert sample("jupyter_sched_runs_total", status="failed") == failed + 1
    assert sample("jupyter_sched_run_duration_seconds_count", status="succeeded") == durations + 1
    assert sample("jupyter_sched_queue_depth", queue="default") == 0
    assert sample("jupyter_sched_runs_running") == 0


def test_fire_lateness_and_runs_older_than_the_window(service: Service) -> None:
    now = utcnow()
    job_out = service.create_job(OWNER, {"name": "m", "notebook": HELLO}, now=now)
    observer = RunObserver(service)
    observer.poll(now)
    count = sample("jupyter_sched_fire_lateness_seconds_count")
    total = sample("jupyter_sched_fire_lateness_seconds_sum")
    with service.db.write() as session:
        job = session.get(Job, job_out.id)
        late = new_run(job, now=now, trigger="schedule", scheduled_for=now - timedelta(seconds=3))
        session.add(late)
    observer.poll(now)
    assert sample("jupyter_sched_fire_lateness_seconds_count") == count + 1
    assert sample("jupyter_sched_fire_lateness_seconds_sum") - total == pytest.approx(3.0)

    # A run that stays open longer than the re-read window is still counted when it ends.
    later = now + timedelta(days=1)
    observer.poll(later)
    succeeded = sample("jupyter_sched_runs_total", status="succeeded")
    finished(service, late.id, "succeeded", later)
    observer.poll(later)
    assert sample("jupyter_sched_runs_total", status="succeeded") == succeeded + 1
    assert sample("jupyter_sched_fire_lateness_seconds_count") == count + 1
