"""The light reads of ``jupyter sched jobs list`` and ``runs list``
(:mod:`jupyter_sched.listing`): the same lines as the API's jobs and runs, on SQLite and
PostgreSQL, read from the models' columns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jupyter_sched.listing import JOBS, RUNS, job_lines, run_lines
from jupyter_sched.models import Job, Run
from jupyter_sched.service import Service
from jupyter_sched.terminal import JobLine, RunLine

from .conftest import OWNER

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NOTEBOOK = "tests/notebooks/trivial.ipynb"


def create(service: Service, name: str, trigger: dict[str, Any], **fields: Any) -> str:
    body = {"name": name, "notebook": NOTEBOOK, "trigger": trigger, **fields}
    return service.create_job(OWNER, body, now=NOW).id


def api_lines(service: Service, **filters: Any) -> list[JobLine]:
    """The lines of the jobs the API lists (every page)."""
    page = service.list_jobs(OWNER, limit=2, **filters)
    jobs = list(page.jobs)
    while page.next_cursor:
        page = service.list_jobs(OWNER, limit=2, cursor=page.next_cursor, **filters)
        jobs += page.jobs
    return [JobLine.of(job) for job in jobs]


def test_the_listing_reads_what_the_api_lists(service: Service) -> None:
    cron = create(service, "cron", {"kind": "cron", "cron": "0 6 * * 1-5",
                                    "timezone": "Europe/Paris"}, tags=["finance"])  # fmt: skip
    every = create(service, "every", {"kind": "interval", "every_seconds": 5400})
    create(service, "once", {"kind": "once", "at": "2030-01-01T10:00:15Z"}, tags=["finance"])
    create(service, "event", {"kind": "event", "event": "sales.loaded"})
    create(service, "after", {"kind": "after", "jobs": [cron, every], "condition": "failure"})
    create(service, "by hand " + "x" * 40, {"kind": "manual"})
    service.pause_job(OWNER, every)
    service.run_job(OWNER, cron)
    last = service.run_job(OWNER, cron)
    gone = create(service, "gone", {"kind": "manual"})
    with service.db.write() as session:  # set aside, with a trigger that cannot be read
        row = session.get(Job, gone)
        assert row is not None
        row.status, row.error = "error", "trigger.timezone: unknown timezone"
        row.trigger = {"kind": "cron", "cron": "0 6 * * *", "timezone": "Nowhere/Atlantis"}
        row.trigger_kind = "cron"
    service.create_job("bob", {"name": "bob's", "notebook": NOTEBOOK})

    lines = job_lines(service.db, OWNER)
    assert lines == api_lines(service)
    words = {line.name: line.trigger_description for line in lines}
    assert words["after"] == "after 'cron' and 'every' have failed"
    assert words["gone"] == "a cron trigger that cannot be read any more"
    assert words["once"] == "once, on 1 January 2030 at 10:00:15 UTC"
    assert next(line for line in lines if line.id == cron).last_run_status == last.status
    assert "bob's" not in words
    for filters in ({"status": "paused"}, {"status": "error"}, {"tag": "finance"}, {"tag": "x"}):
        assert job_lines(service.db, OWNER, **filters) == api_lines(service, **filters), filters
    assert [line.name for line in job_lines(service.db, OWNER, tag="finance")] == ["once", "cron"]


def test_a_deployment_without_jobs_lists_none(service: Service) -> None:
    assert job_lines(service.db, OWNER) == []
    assert run_lines(service.db, OWNER, limit=20) == []


def test_the_run_listing_reads_what_the_api_lists(service: Service) -> None:
    first = create(service, "first", {"kind": "manual"})
    second = create(service, "second", {"kind": "manual"})
    runs = [service.run_job(OWNER, job) for job in (first, second, first, second, first)]
    service.cancel_run(OWNER, runs[1].id)
    with service.db.write() as session:  # one that ran, for its duration
        row = session.get(Run, runs[0].id)
        assert row is not None
        row.status, row.duration_seconds = "succeeded", 2.5
    service.run_notebook(OWNER, NOTEBOOK, {}, dispatch=False)
    service.run_notebook("bob", NOTEBOOK, {}, dispatch=False)
    for filters in ({}, {"job_id": first}, {"status": "cancelled"}, {"status": "succeeded"},
                    {"job_id": second, "status": "queued"}, {"job_id": "none"}):  # fmt: skip
        for limit in (2, 20):
            page = service.list_runs(OWNER, limit=limit, **filters)
            api = [RunLine.of(run) for run in page.runs]
            assert run_lines(service.db, OWNER, limit=limit, **filters) == api, (filters, limit)
    lines = run_lines(service.db, OWNER, limit=20)
    assert len(lines) == 6 and lines[-1].duration_seconds == 2.5


@pytest.mark.parametrize(("light", "model"), [(JOBS, Job), (RUNS, Run)])
def test_the_listing_reads_columns_of_the_models(light: Any, model: Any) -> None:
    table = model.__table__
    assert light.name == table.name
    for column in light.columns:
        assert column.name in table.columns, column.name
        assert type(column.type) is type(table.columns[column.name].type), column.name
