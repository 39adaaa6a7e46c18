"""One job's or one run's fault stays its own.

A job whose stored trigger can no longer be fired (a timezone gone from tzdata, a cron
expression a newer version refuses) is set aside with its reason while every other job
fires and runs are reaped and dispatched; a run whose preparation raises anything ends
``failed`` at once with that error, instead of waiting out its lease as ``lost``.
"""

from __future__ import annotations

import json
import pwd
import shutil
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from jupyter_sched.config import Settings
from jupyter_sched.errors import InvalidInput
from jupyter_sched.lifecycle import claim
from jupyter_sched.models import Job, Run
from jupyter_sched.service import Service
from jupyter_sched.ticker import tick
from jupyter_sched.worker import Worker

from .conftest import FAST, OWNER, REPO, wait_for_run, wait_until

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTEBOOK = "nb.ipynb"
GONE_ZONE = {"kind": "cron", "cron": "* * * * *", "timezone": "Mars/Olympus"}
BAD_CRON = {"kind": "cron", "cron": "61 * * * *", "timezone": "UTC"}
TOO_OFTEN = {"kind": "interval", "every_seconds": 0.5}


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """A root of the test's own, so that a test may change a notebook under its jobs."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(REPO / "tests" / "notebooks" / "trivial.ipynb", root / NOTEBOOK)
    return Settings(
        data_dir=tmp_path / "data",
        db_url=db_url,
        root_dir=root,
        secret="test-secret",
        **FAST,  # type: ignore[arg-type]
    )


def job(service: Service, name: str, trigger: dict[str, Any], **fields: Any) -> str:
    body = {"name": name, "notebook": NOTEBOOK, "trigger": trigger, **fields}
    return service.create_job(OWNER, body, now=T0).id


def store_trigger(service: Service, job_id: str, trigger: dict[str, Any]) -> None:
    """Change a job's stored trigger behind the API's back (what an upgrade of the
    software or of tzdata does to what was valid)."""
    with service.db.write() as session:
        session.execute(update(Job).where(Job.id == job_id).values(trigger=trigger))


def test_a_job_that_cannot_fire_is_set_aside_and_the_others_fire(service: Service) -> None:
    good = job(service, "good", {"kind": "interval", "every_seconds": 60})
    zone = job(service, "zone", {**GONE_ZONE, "timezone": "Europe/Paris"})
    cron = job(service, "cron", {**BAD_CRON, "cron": "1 * * * *"})
    often = job(service, "often", {**TOO_OFTEN, "every_seconds": 60})
    store_trigger(service, zone, GONE_ZONE)
    store_trigger(service, cron, BAD_CRON)
    store_trigger(service, often, TOO_OFTEN)  # a limit a later version tightened
    # Stored rows are read as stored: listed and shown, not refused.
    listed = {j.id: j for j in service.list_jobs(OWNER).jobs}
    assert listed.keys() == {good, zone, cron, often}
    assert service.get_job(OWNER, zone).trigger.model_dump() == GONE_ZONE
    assert service.get_job(OWNER, often).trigger.model_dump() == TOO_OFTEN
    # A run whose worker died, and one waiting to be handed to the queue.
    dead = service.run_job(OWNER, good, now=T0).id
    assert claim(service.db, dead, "dead-worker", T0)
    waiting = service.run_job(OWNER, good, now=T0).id
    with service.db.write() as session:
        session.execute(update(Run).where(Run.id == waiting).values(enqueued_at=None))

    now = T0 + timedelta(minutes=10)
    report = tick(service.db, service.queues, service.settings, now)

    fired = [service.get_run(OWNER, run_id) for run_id in report.fired]
    assert fired and {run.job_id for run in fired} == {good}
    assert report.lost == [dead]
    assert waiting in report.dispatched
    reasons = {
        zone: "trigger.timezone: unknown timezone 'Mars/Olympus'",
        cron: "trigger.cron: bad minute field '61'",
        often: "trigger.every_seconds: Input should be greater than or equal to 1",
    }
    for job_id, says in reasons.items():
        aside = service.get_job(OWNER, job_id)
        assert (aside.status, aside.next_fire_at) == ("error", None)
        assert aside.error is not None, aside
        assert aside.error.startswith(f"the job cannot be fired: {says}"), aside.error
    assert {j.id for j in service.list_jobs(OWNER, status="error").jobs} == reasons.keys()

    # The next ticks go on as usual, without them.
    later = tick(service.db, service.queues, service.settings, now + timedelta(minutes=1))
    assert [service.get_run(OWNER, r).job_id for r in later.fired] == [good]
    assert service.list_runs(OWNER, job_id=zone).runs == []


def test_resuming_or_retriggering_a_job_set_aside_puts_it_back(service: Service) -> None:
    zone = job(service, "zone", {**GONE_ZONE, "timezone": "Europe/Paris"})
    store_trigger(service, zone, GONE_ZONE)
    now = T0 + timedelta(minutes=5)
    tick(service.db, service.queues, service.settings, now)
    aside = service.get_job(OWNER, zone)
    assert aside.status == "error"

    with pytest.raises(InvalidInput) as refused:
        service.resume_job(OWNER, zone, now=now)
    assert refused.value.field == "trigger.timezone"
    assert "Mars/Olympus" in refused.value.message
    assert service.get_job(OWNER, zone).status == "error"

    # The zone is known again (tzdata restored): resuming puts the job back.
    store_trigger(service, zone, {**GONE_ZONE, "timezone": "Europe/Paris"})
    resumed = service.resume_job(OWNER, zone, now=now)
    assert (resumed.status, resumed.error) == ("active", None)
    assert resumed.next_fire_at == now.replace(second=0) + timedelta(minutes=1)
    assert resumed.version > aside.version

    # Set aside again; a new trigger puts it back too.
    store_trigger(service, zone, GONE_ZONE)
    tick(service.db, service.queues, service.settings, now + timedelta(minutes=2))
    assert service.get_job(OWNER, zone).status == "error"
    patched = service.update_job(
        OWNER, zone, {"trigger": {"kind": "interval", "every_seconds": 600}}, now=now
    )
    assert (patched.status, patched.error) == ("active", None)
    assert patched.next_fire_at is not None and patched.next_fire_at > now


def test_a_run_whose_kernel_language_is_unknown_fails_at_once(
    service: Service, worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_job = job(
        service,
        "on event",
        {"kind": "event", "event": "loaded"},
        parameters={"x": 3},
        retries=1,
        retry_delay_seconds=0,
    )
    # A kernel is installed whose language papermill has no translator for (a real
    # kernelspec, found through JUPYTER_PATH), and the notebook changes to use it: papermill
    # raises its own exception, not one of the scheduler's.
    spec_dir = tmp_path / "jupyter" / "kernels" / "klingon"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Klingon",
                "language": "klingon",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    path = service.settings.root_dir / NOTEBOOK
    nb = json.loads(path.read_text())
    nb["metadata"]["kernelspec"] = {
        "name": "klingon",
        "display_name": "Klingon",
        "language": "klingon",
    }
    nb["metadata"]["language_info"]["name"] = "klingon"
    path.write_text(json.dumps(nb))

    (run,) = service.fire_event(OWNER, "loaded", {"rows": 3})
    done = wait_for_run(service, run.id, timeout=60)

    assert done.status == "failed", done
    assert done.error is not None and done.error.ename == "PapermillException"
    assert "klingon" in done.error.evalue
    log, _ = service.run_log(OWNER, run.id)
    assert "PapermillException" in log and "klingon" in log
    # Its retry fails the same way, at once: nothing waits out a lease.
    wait_until(lambda: len(service.list_runs(OWNER, job_id=event_job).runs) == 2, 30, "retry")
    runs = service.list_runs(OWNER, job_id=event_job).runs
    assert all(wait_for_run(service, r.id).status == "failed" for r in runs)
    assert service.job_stats(OWNER, event_job).failed == 2


def test_a_run_whose_snapshot_cannot_be_written_fails_at_once_and_its_retry_runs(
    service: Service, ticker: Any, start_worker: Any
) -> None:
    job_id = job(service, "j", {"kind": "manual"}, retries=1, retry_delay_seconds=0)
    path = service.settings.root_dir / NOTEBOOK
    hidden = path.with_suffix(".hidden")
    path.rename(hidden)  # no snapshot at run time: the worker takes it
    run = service.run_job(OWNER, job_id)
    # The worker's copy cannot be written: something else sits where it goes.
    (service.settings.artifacts_dir / run.id / "input.tmp").mkdir(parents=True)
    hidden.rename(path)
    start_worker()

    done = wait_for_run(service, run.id, timeout=60)

    assert done.status == "failed", done
    assert done.error is not None and done.error.ename == "IsADirectoryError"
    log, _ = service.run_log(OWNER, run.id)
    assert "cannot run: IsADirectoryError" in log
    wait_until(lambda: len(service.list_runs(OWNER, job_id=job_id).runs) == 2, 30, "retry")
    retry = next(r for r in service.list_runs(OWNER, job_id=job_id).runs if r.id != run.id)
    assert retry.attempt == 2
    assert wait_for_run(service, retry.id).status == "succeeded"


def test_a_run_whose_owner_has_no_account_on_the_workers_machine_fails_clearly(
    service: Service, ticker: Any
) -> None:
    """On a hub, workers run each run as its owner's Unix user; an owner the worker's
    machine has no account for (a user of the hub only) fails the run with that reason."""
    owner = f"nosuchuser-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KeyError):
        pwd.getpwnam(owner)
    # Made by a scheduler that does not run as owners (the hub's machine knows the user) ...
    run = service.run_notebook(owner, NOTEBOOK, {"x": 2})
    # ... and taken by a worker that runs each run as its owner.
    as_owners = Worker(service.settings.replace(run_as_owner=True), service.db)
    as_owners.start()
    try:
        done = wait_for_run(service, run.id, timeout=60, owner=owner)
    finally:
        as_owners.stop(grace_seconds=0)

    assert done.status == "failed", done
    assert done.error is not None and done.error.ename == "NoSuchOwner"
    assert done.error.evalue.startswith(f"the run's owner {owner!r} has no Unix account")
    assert done.error.evalue.endswith("runs execute as their owner")
    assert done.worker_id == as_owners.id and done.started_at is not None
    log, _ = service.run_log(owner, run.id)
    assert f"cannot run: {done.error.evalue}" in log
    assert service.list_runs(owner, status="running").runs == []
