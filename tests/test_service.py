"""The service's job and run operations on SQLite and PostgreSQL, and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import func, select

from jupyter_sched.errors import Conflict, InvalidInput, NotFound, PathOutsideRoot, SchedError
from jupyter_sched.models import Job, Run
from jupyter_sched.service import Service
from jupyter_sched.ticker import fire_due_jobs
from jupyter_sched.worker import Worker

from .conftest import OWNER

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
REPORT = "notebooks/sales_report.ipynb"


def job_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "daily sales",
        "notebook": REPORT,
        "parameters": {"region": "US", "days": 3},
        "trigger": {"kind": "cron", "cron": "0 6 * * 1-5", "timezone": "Europe/Paris"},
        "retries": 2,
        "tags": ["finance", "daily"],
    }
    body.update(changes)
    return body


def count(service: Service, model: type) -> int:
    with service.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_create_get_list_update_delete(service: Service) -> None:
    job = service.create_job(OWNER, job_body(), now=NOW)
    assert job.owner == OWNER and job.status == "active" and job.version == 1
    # 06:00 Paris on Monday 2026-11-23 is 05:00 UTC, already past at 09:00 UTC: next is Tuesday
    assert job.next_fire_at == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    assert service.get_job(OWNER, job.id) == job

    other = service.create_job(OWNER, job_body(name="weekly", tags=["ops"]), now=NOW)
    page = service.list_jobs(OWNER, limit=1)
    assert [j.id for j in page.jobs] == [other.id] and page.next_cursor
    rest = service.list_jobs(OWNER, limit=1, cursor=page.next_cursor)
    assert [j.id for j in rest.jobs] == [job.id] and rest.next_cursor is None
    assert [j.id for j in service.list_jobs(OWNER, tag="finance").jobs] == [job.id]
    assert [j.id for j in service.list_jobs(OWNER, tag="ops").jobs] == [other.id]

    later = NOW + timedelta(hours=1)
    changed = service.update_job(
        OWNER, job.id, {"name": "renamed", "timeout_seconds": 60, "version": 1}, now=later
    )
    assert (changed.name, changed.timeout_seconds, changed.version) == ("renamed", 60, 2)
    assert changed.retries == 2 and changed.updated_at == later  # absent fields unchanged
    cleared = service.update_job(OWNER, job.id, {"timeout_seconds": None}, now=later)
    assert cleared.timeout_seconds is None
    with pytest.raises(Conflict) as stale:
        service.update_job(OWNER, job.id, {"name": "x", "version": 1}, now=later)
    assert stale.value.field == "version"
    with pytest.raises(InvalidInput) as nulled:
        service.update_job(OWNER, job.id, {"name": None}, now=later)
    assert nulled.value.field == "name"

    interval = service.update_job(
        OWNER, job.id, {"trigger": {"kind": "interval", "every_seconds": 600}}, now=later
    )
    assert interval.next_fire_at == later + timedelta(seconds=600)

    paused = service.pause_job(OWNER, job.id, now=later)
    assert paused.status == "paused" and paused.next_fire_at is None
    resumed = service.resume_job(OWNER, job.id, now=later)
    assert resumed.status == "active" and resumed.next_fire_at is not None

    service.delete_job(OWNER, job.id)
    with pytest.raises(NotFound):
        service.get_job(OWNER, job.id)
    assert count(service, Job) == 1


def test_users_see_only_their_own_jobs_and_runs(service: Service) -> None:
    job = service.create_job(OWNER, job_body(), now=NOW)
    run = service.run_job(OWNER, job.id, now=NOW)
    for call in (
        lambda: service.get_job("bob", job.id),
        lambda: service.update_job("bob", job.id, {"name": "mine"}),
        lambda: service.delete_job("bob", job.id),
        lambda: service.run_job("bob", job.id),
        lambda: service.job_stats("bob", job.id),
        lambda: service.get_run("bob", run.id),
        lambda: service.cancel_run("bob", run.id),
        lambda: service.run_log("bob", run.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert service.list_jobs("bob").jobs == []
    assert service.list_runs("bob").runs == []
    assert service.get_job(OWNER, job.id).name == "daily sales"


def test_run_now_overrides_and_list_filters(service: Service) -> None:
    job = service.create_job(OWNER, job_body(), now=NOW)
    run = service.run_job(OWNER, job.id, {"days": 10}, now=NOW)
    assert run.status == "queued" and run.trigger == "manual" and run.attempt == 1
    assert run.parameters == {"region": "US", "days": 10}
    adhoc = service.run_notebook(OWNER, "notebooks/hello.ipynb", {"name": "x"}, now=NOW)
    assert adhoc.job_id is None
    assert [r.id for r in service.list_runs(OWNER, job_id=job.id).runs] == [run.id]
    assert {r.id for r in service.list_runs(OWNER, status="queued").runs} == {run.id, adhoc.id}
    assert service.list_runs(OWNER, since=NOW + timedelta(seconds=1)).runs == []
    cancelled = service.cancel_run(OWNER, run.id, now=NOW)
    assert cancelled.status == "cancelled"
    with pytest.raises(Conflict, match="already finished"):
        service.cancel_run(OWNER, run.id, now=NOW)
    again = service.rerun(OWNER, run.id, now=NOW)
    assert again.parameters == run.parameters and again.id != run.id


def test_preview_and_notebook_parameters(service: Service) -> None:
    preview = service.preview(
        {"trigger": {"kind": "cron", "cron": "30 8 * * 1-5", "timezone": "UTC"}, "count": 3},
        now=NOW,
    )
    assert preview.next == [
        datetime(2026, 11, 24, 8, 30, tzinfo=UTC),
        datetime(2026, 11, 25, 8, 30, tzinfo=UTC),
        datetime(2026, 11, 26, 8, 30, tzinfo=UTC),
    ]
    assert "08:30" in preview.description
    params = {p.name: p for p in service.notebook_parameters(REPORT)}
    assert params["region"].type == "str" and params["region"].default == "EU"
    assert params["days"].type == "int" and params["growth"].type == "float"
    assert params["products"].type == "list" and params["targets"].type == "dict"


BAD_JOBS = [
    ({"trigger": {"kind": "cron", "cron": "61 * * * *"}}, "trigger.cron"),
    ({"trigger": {"kind": "cron", "cron": "* *"}}, "trigger.cron"),
    (
        {"trigger": {"kind": "cron", "cron": "0 6 * * *", "timezone": "Mars/Base"}},
        "trigger.timezone",
    ),
    ({"trigger": {"kind": "interval", "every_seconds": 0}}, "trigger.every_seconds"),
    ({"trigger": {"kind": "interval", "every_seconds": -5}}, "trigger.every_seconds"),
    ({"trigger": {"kind": "once", "at": "2020-01-01T00:00:00Z"}}, "trigger.at"),
    ({"trigger": {"kind": "once", "at": "2027-01-01T00:00:00"}}, "trigger.at"),
    ({"trigger": {"kind": "sometimes"}}, "trigger"),
    ({"notebook": "notebooks/missing.ipynb"}, "notebook"),
    ({"notebook": "README.md"}, "notebook"),
    ({"notebook": "../outside.ipynb"}, "notebook"),
    ({"notebook": "/etc/passwd.ipynb"}, "notebook"),
    ({"parameters": {"days": "seven"}}, "parameters.days"),
    ({"parameters": {"growth": True}}, "parameters.growth"),
    ({"parameters": {"nope": 1}}, "parameters.nope"),
    ({"parameters": "region=EU"}, "parameters"),
    ({"parameters": {"region": float("nan")}}, "parameters.region"),
    ({"name": ""}, "name"),
    ({"retries": -1}, "retries"),
    ({"overlap": "sometimes"}, "overlap"),
    ({"colour": "blue"}, "colour"),
    ({"kernel": "no-such-kernel"}, "kernel"),
    ({"start_at": "2026-12-02T00:00:00Z", "end_at": "2026-12-01T00:00:00Z"}, "end_at"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_JOBS)
def test_bad_jobs_are_refused_and_nothing_is_stored(
    service: Service, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(SchedError) as refused:
        service.create_job(OWNER, job_body(**changes), now=NOW)
    assert refused.value.field == field
    assert field.split(".")[-1] in refused.value.message
    assert count(service, Job) == 0 and count(service, Run) == 0


def test_a_notebook_that_is_not_a_notebook(service: Service, tmp_path) -> None:
    root = service.settings.root_dir
    broken = root / "tests" / "notebooks" / "_broken_tmp.ipynb"
    try:
        broken.write_text("{not json")
        with pytest.raises(InvalidInput, match="notebook"):
            service.create_job(
                OWNER, job_body(notebook=str(broken.relative_to(root)), parameters={})
            )
        broken.write_text('{"cells": "no"}')
        with pytest.raises(InvalidInput, match="not a valid notebook"):
            service.create_job(
                OWNER, job_body(notebook=str(broken.relative_to(root)), parameters={})
            )
    finally:
        broken.unlink()
    assert count(service, Job) == 0


def test_symlink_out_of_the_root_is_refused(service: Service, tmp_path) -> None:
    outside = tmp_path / "secret.ipynb"
    outside.write_text((service.settings.root_dir / "notebooks" / "hello.ipynb").read_text())
    link = service.settings.root_dir / "tests" / "notebooks" / "_link_tmp.ipynb"
    link.symlink_to(outside)
    try:
        with pytest.raises(PathOutsideRoot):
            service.create_job(
                OWNER, job_body(notebook="tests/notebooks/_link_tmp.ipynb", parameters={})
            )
    finally:
        link.unlink()


def test_on_a_hub_each_notebook_runs_from_its_owners_root(service: Service, tmp_path: Path) -> None:
    """Every user's server has its own root; tickers and workers serve all users. A job
    must run the notebook its owner chose, from the owner's root, whoever fires it."""
    roots = {}
    for user in ("alice", "bob"):
        roots[user] = tmp_path / "home" / user
        (roots[user] / "reports").mkdir(parents=True)
        source = f"import os; print('notebook of {user}', os.getcwd())"
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        nbformat.write(nb, roots[user] / "reports" / "daily.ipynb")
    servers = {
        user: Service.open(service.settings.replace(root_dir=root)) for user, root in roots.items()
    }
    job = servers["alice"].create_job(
        "alice",
        {"name": "daily", "notebook": "reports/daily.ipynb",
         "trigger": {"kind": "interval", "every_seconds": 3600}},
    )  # fmt: skip
    # Bob's server ticks (Alice's is stopped) and a worker on a third machine executes.
    due = job.next_fire_at
    assert due is not None
    (run_id,) = fire_due_jobs(servers["bob"].db, servers["bob"].settings, due).fired
    elsewhere = service.settings.replace(root_dir=tmp_path / "worker-cwd")
    Worker(elsewhere, service.db, worker_id="w").execute(run_id)
    run = service.get_run("alice", run_id)
    assert run.status == "succeeded", run.error
    nb = nbformat.read(service.run_output("alice", run_id), as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert printed.strip() == f"notebook of alice {roots['alice'] / 'reports'}"
    # Reruns and ad-hoc runs keep the root of the server that checked the path.
    rerun = servers["alice"].rerun("alice", run_id)
    with service.db.read() as session:
        assert session.get(Run, rerun.id).root_dir == str(roots["alice"])  # type: ignore[union-attr]
    adhoc = servers["bob"].run_notebook("bob", "reports/daily.ipynb", dispatch=False)
    with service.db.read() as session:
        assert session.get(Run, adhoc.id).root_dir == str(roots["bob"])  # type: ignore[union-attr]
    for server in servers.values():
        server.db.dispose()


def test_personal_queues_take_only_their_users_runs(service: Service) -> None:
    """On a hub, the workers of ``user-alice`` run as Alice: Bob may not send work there."""
    alices = service.create_job("alice", job_body(queue="user-alice"))
    assert alices.queue == "user-alice"
    bobs = service.create_job("bob", job_body())
    for attempt in (
        lambda: service.create_job("bob", job_body(queue="user-alice")),
        lambda: service.update_job("bob", bobs.id, {"queue": "user-alice"}),
        lambda: service.run_notebook("bob", "notebooks/hello.ipynb", queue="user-alice"),
    ):
        with pytest.raises(InvalidInput) as refused:
            attempt()
        assert refused.value.field == "queue"
        assert "'user-bob'" in refused.value.message
    assert service.get_job("bob", bobs.id).queue == "default"
    assert service.create_job("bob", job_body(queue="user-bob")).queue == "user-bob"
    assert service.create_job("bob", job_body(queue="heavy")).queue == "heavy"
    assert [j.queue for j in service.list_jobs("bob").jobs if j.queue.startswith("user-")] == [
        "user-bob"
    ]
