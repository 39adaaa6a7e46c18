"""Report builders: run dates, backfills, sweeps and batches, recorded values, summaries,
checks and value alerts, with real kernels, workers and the ticker."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from jupyter_sched import record
from jupyter_sched.dispatch import dispatch
from jupyter_sched.errors import InvalidInput
from jupyter_sched.lifecycle import new_run, request_cancel
from jupyter_sched.models import Batch, Job, Run
from jupyter_sched.schemas import Job as JobView
from jupyter_sched.service import Service
from jupyter_sched.ticker import fire_due_jobs
from jupyter_sched.values import VALUE_MIME, extract_values, failed_check, holds
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_until

REPORT = "tests/notebooks/report.ipynb"
GLUED = "tests/notebooks/glued.ipynb"
PARIS = ZoneInfo("Europe/Paris")


def runs_of(service: Service, job_id: str) -> list[Run]:
    with service.db.read() as session:
        return list(session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.id)))


def count(service: Service, model: type[Any]) -> int:
    with service.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def wait_batch_done(service: Service, batch_id: str, timeout: float = 240.0) -> None:
    def done() -> bool:
        batch = service.get_batch(OWNER, batch_id)
        return batch.progress.done == batch.total

    wait_until(done, timeout=timeout, what=f"batch {batch_id} done")


def max_overlap(runs: list[Run]) -> int:
    """The most runs that were running at one instant, from their start and end times."""
    edges = sorted(
        [(r.started_at, 1) for r in runs if r.started_at]
        + [(r.finished_at, -1) for r in runs if r.finished_at]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


# -- run dates and backfills -------------------------------------------------------------


def test_a_backfill_across_a_dst_change_runs_each_day_once_at_most_max_parallel(
    service: Service, start_worker: Callable[..., Worker], ticker: Any
) -> None:
    start_worker(concurrency=3)
    job = service.create_job(
        OWNER,
        {
            "name": "daily report",
            "notebook": REPORT,
            "trigger": {"kind": "cron", "cron": "30 9 * * *", "timezone": "Europe/Paris"},
        },
    )
    # Summer time ends in Paris on Sunday 25 October 2026.
    request = {
        "start": "2026-10-20T00:00:00+02:00",
        "end": "2026-10-29T23:59:00+01:00",
        "max_parallel": 2,
    }
    preview = service.backfill_preview(OWNER, job.id, request)
    assert (preview.count, preview.runs) == (10, 10)
    assert preview.first == datetime(2026, 10, 20, 9, 30, tzinfo=PARIS)
    assert preview.last == datetime(2026, 10, 29, 9, 30, tzinfo=PARIS)
    batch = service.backfill(OWNER, job.id, request)
    assert (batch.kind, batch.total, batch.max_parallel) == ("backfill", 10, 2)
    wait_batch_done(service, batch.id)

    runs = runs_of(service, job.id)
    assert len(runs) == 10
    assert {r.batch_id for r in runs} == {batch.id} and {r.trigger for r in runs} == {"backfill"}
    assert all(r.status == "succeeded" for r in runs), [(r.status, r.error) for r in runs]
    received = sorted(r.values["reported_for"] for r in runs)
    # one per calendar day, at 09:30 local time, the offset changing with the DST change
    assert received == [
        f"2026-10-{day}T09:30:00+0{2 if day < 25 else 1}:00" for day in range(20, 30)
    ]
    assert sorted(r.scheduled_for for r in runs) == [
        datetime(2026, 10, day, 9, 30, tzinfo=PARIS).astimezone(UTC) for day in range(20, 30)
    ]
    assert max_overlap(runs) <= 2
    progress = service.get_batch(OWNER, batch.id).progress
    assert (progress.done, progress.failed, progress.running, progress.queued) == (10, 0, 0, 0)


def test_every_run_has_a_logical_time(service: Service) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    job = service.create_job(OWNER, {"name": "manual", "notebook": REPORT})
    manual = service.run_job(OWNER, job.id, now=now)
    assert manual.scheduled_for == now  # the request's time
    adhoc = service.run_notebook(OWNER, REPORT, dispatch=False, now=now + timedelta(seconds=1))
    assert adhoc.scheduled_for == now + timedelta(seconds=1)


def test_backfill_refusals_name_the_field_and_make_nothing(service: Service) -> None:
    daily = service.create_job(
        OWNER,
        {
            "name": "windowed",
            "notebook": REPORT,
            "trigger": {"kind": "cron", "cron": "0 6 * * *", "timezone": "UTC"},
            "start_at": "2026-01-01T00:00:00Z",
            "end_at": "2026-12-31T00:00:00Z",
        },
    )
    minutely = service.create_job(
        OWNER,
        {"name": "minutely", "notebook": REPORT, "trigger": {"kind": "cron", "cron": "* * * * *"}},
    )
    manual = service.create_job(OWNER, {"name": "manual", "notebook": REPORT})
    cases = [
        (daily.id, {"start": "2026-03-10T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        (daily.id, {"start": "2025-12-01T00:00:00Z", "end": "2026-01-10T00:00:00Z"}, "start"),
        (daily.id, {"start": "2026-12-01T00:00:00Z", "end": "2027-01-10T00:00:00Z"}, "end"),
        (manual.id, {"start": "2026-03-01T00:00:00Z", "end": "2026-03-10T00:00:00Z"}, "trigger"),
        (daily.id, {"start": "2026-03-01T00:00:00Z", "end": "2026-03-10"}, "end"),
        (
            daily.id,
            {"start": "2026-03-01T00:00:00Z", "end": "2026-03-10T00:00:00Z", "max_parallel": 0},
            "max_parallel",
        ),
        (daily.id, {"start": "2026-03-01T07:00:00Z", "end": "2026-03-01T08:00:00Z"}, "end"),
    ]
    for job_id, request, field in cases:
        with pytest.raises(InvalidInput) as refused:
            service.backfill(OWNER, job_id, request)
        assert refused.value.field == field, (request, refused.value.message)
    # a day of minutes is 1,440 fires: over the bound of 1,000, and the message counts them
    with pytest.raises(InvalidInput, match="holds 1440 fires") as refused:
        service.backfill(
            OWNER, minutely.id, {"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T23:59:00Z"}
        )
    assert refused.value.field == "end"
    assert count(service, Run) == 0 and count(service, Batch) == 0


# -- sweeps and batches ------------------------------------------------------------------


GRID = {"region": ["EU", "US", "APAC"], "days": [1, 2, 3, 4]}


def test_a_fire_of_a_sweep_job_makes_one_run_per_set_in_one_batch(service: Service) -> None:
    job = service.create_job(
        OWNER,
        {
            "name": "grid",
            "notebook": REPORT,
            "sweep": GRID,
            "max_parallel": 4,
            "trigger": {"kind": "cron", "cron": "0 6 * * *"},
        },
    )
    assert job.next_fire_at is not None
    report = fire_due_jobs(service.db, service.settings, job.next_fire_at + timedelta(seconds=1))
    runs = runs_of(service, job.id)
    assert len(report.fired) == len(runs) == 12
    assert sorted((r.parameters["region"], r.parameters["days"]) for r in runs) == sorted(
        (region, days) for region in GRID["region"] for days in GRID["days"]
    )
    assert len({r.batch_id for r in runs}) == 1 and {r.trigger for r in runs} == {"schedule"}
    assert {r.scheduled_for for r in runs} == {job.next_fire_at}
    assert sorted(r.batch_index for r in runs) == list(range(12))
    batch = service.get_batch(OWNER, runs[0].batch_id or "")
    assert (batch.kind, batch.total, batch.max_parallel) == ("sweep", 12, 4)
    # the same fire again (a second ticker) makes nothing more
    fire_due_jobs(service.db, service.settings, job.next_fire_at + timedelta(seconds=1))
    assert len(runs_of(service, job.id)) == 12


def test_a_fired_batch_hands_over_max_parallel_and_holds_back_only_its_own_runs(
    service: Service,
) -> None:
    sweep = service.create_job(
        OWNER,
        {
            "name": "grid",
            "notebook": REPORT,
            "sweep": GRID,
            "max_parallel": 2,
            "trigger": {"kind": "cron", "cron": "0 6 * * *"},
        },
    )
    assert sweep.next_fire_at is not None
    now = sweep.next_fire_at + timedelta(seconds=1)
    report = fire_due_jobs(service.db, service.settings, now, queues=service.queues)
    assert len(report.fired) == 12
    handed = set(report.dispatched)
    assert len(handed) == 2  # the batch's first max_parallel, put on the queue at fire time
    assert service.queues["default"].pending_ids() == handed
    # A run queued behind the full batch goes at once; the batch's others wait.
    alone = service.create_job(OWNER, {"name": "alone", "notebook": REPORT})
    with service.db.write() as session:
        session.add(new_run(session.get(Job, alone.id), now=now, trigger="manual"))
    sent = dispatch(service.db, service.queues, now)
    assert [run.job_id for run in runs_in(service, sent)] == [alone.id]
    # One of the batch's runs ends (cancelled): one more of it is handed over, in order.
    request_cancel(service.db, sorted(handed)[0], now, max_retry_delay=60)
    sent = dispatch(service.db, service.queues, now)
    assert len(sent) == 1
    (next_run,) = runs_in(service, sent)
    assert (next_run.job_id, next_run.batch_index) == (sweep.id, 2)


def runs_in(service: Service, run_ids: list[str]) -> list[Run]:
    with service.db.read() as session:
        return list(session.scalars(select(Run).where(Run.id.in_(run_ids))))


def test_a_sweep_runs_its_sets_then_its_follower_once_and_summarises_them(
    service: Service, start_worker: Callable[..., Worker], ticker: Any
) -> None:
    start_worker(concurrency=3)
    sweep = service.create_job(
        OWNER, {"name": "grid", "notebook": REPORT, "sweep": GRID, "max_parallel": 3}
    )
    follower = service.create_job(
        OWNER,
        {"name": "after", "notebook": REPORT, "trigger": {"kind": "after", "jobs": [sweep.id]}},
    )
    first = service.run_job(OWNER, sweep.id)
    assert first.batch_id is not None
    wait_batch_done(service, first.batch_id)
    wait_until(lambda: runs_of(service, follower.id), timeout=60, what="the follower's run")
    runs = runs_of(service, sweep.id)
    assert len(runs) == 12 and all(r.status == "succeeded" for r in runs)
    assert max_overlap(runs) <= 3
    (made,) = runs_of(service, follower.id)
    # made by the batch-completion path (a dependency run in the batch's chain, caused by
    # one of its runs), not by a run of the batch finishing on its own
    assert made.trigger == "dependency" and made.chain_id == f"batch:{first.batch_id}"
    assert len(made.caused_by) == 1 and made.caused_by[0] in {r.id for r in runs}
    followed = wait_for_run(service, made.id)
    # It started after the last of the 12 ended: it was made only once all 12 were final
    # in the database, and claimed after that (each end time is taken before its commit).
    assert followed.started_at is not None
    assert followed.started_at >= max(r.finished_at for r in runs if r.finished_at)
    assert len(runs_of(service, follower.id)) == 1  # once per batch, not once per run

    summary = service.summary(OWNER, sweep.id, batch=first.batch_id)
    assert len(summary.rows) == 12 and summary.values == ["region", "reported_for", "rows"]
    assert summary.parameters == ["days", "region"]  # scheduled_for has its own column
    assert all(row.values["rows"] == row.parameters["days"] * 10 for row in summary.rows)
    table = list(
        csv.DictReader(io.StringIO(service.summary_csv(OWNER, sweep.id, batch=first.batch_id)))
    )
    assert len(table) == 12
    assert {(row["region"], row["days"], row["rows"]) for row in table} == {
        (region, str(days), str(days * 10)) for region in GRID["region"] for days in GRID["days"]
    }
    assert {row["status"] for row in table} == {"succeeded"}
    assert table[0]["value.region"] == table[0]["region"]  # a value named like a parameter


TRIVIAL = "tests/notebooks/trivial.ipynb"


def test_a_batch_is_followed_on_failure_and_on_completion_once_as_its_outcomes_say(
    service: Service, start_worker: Callable[..., Worker], ticker: Any
) -> None:
    start_worker(concurrency=3)
    # The check fails the set with days=3 (30 rows) only; the other sweep always passes.
    check = {"value": "rows", "op": "<", "threshold": 25}
    sweeps: dict[str, JobView] = {}
    for name, days in (("one fails", [1, 2, 3]), ("all pass", [1, 2])):
        spec = {"notebook": REPORT, "sweep": {"days": days}, "max_parallel": 3, "checks": [check]}
        sweeps[name] = service.create_job(OWNER, {"name": name, **spec})
    followers: dict[tuple[str, str], str] = {}
    for name, sweep in sweeps.items():
        for condition in ("failure", "completion", "success"):
            trigger = {"kind": "after", "jobs": [sweep.id], "condition": condition}
            spec = {"name": f"{condition} of {name}", "notebook": TRIVIAL, "trigger": trigger}
            followers[name, condition] = service.create_job(OWNER, spec).id
    batches = {name: service.run_job(OWNER, sweep.id).batch_id for name, sweep in sweeps.items()}
    for batch_id in batches.values():
        assert batch_id is not None
        wait_batch_done(service, batch_id)
    statuses = {
        name: sorted((r.parameters["days"], r.status) for r in runs_of(service, sweep.id))
        for name, sweep in sweeps.items()
    }
    assert statuses == {
        "one fails": [(1, "succeeded"), (2, "succeeded"), (3, "failed")],
        "all pass": [(1, "succeeded"), (2, "succeeded")],
    }
    expected = {("one fails", "failure"), ("one fails", "completion"),
                ("all pass", "completion"), ("all pass", "success")}  # fmt: skip
    for key in expected:
        made = runs_of(service, followers[key])
        # once per batch, made in the transaction that ended the batch's last run
        assert len(made) == 1, (key, made)
        assert made[0].trigger == "dependency"
        assert made[0].chain_id == f"batch:{batches[key[0]]}"
        assert wait_for_run(service, made[0].id).status == "succeeded", key
    # all the batches' runs are final: a follower not made by now never will be
    for key in set(followers) - expected:
        assert runs_of(service, followers[key]) == [], key
    # and the followers' own ends made no second run of any of them
    assert all(len(runs_of(service, followers[key])) == 1 for key in expected)


def test_sweep_refusals_name_the_set_and_field_and_make_nothing(service: Service) -> None:
    base = {"name": "bad", "notebook": REPORT}
    cases: list[tuple[Any, str, str]] = [
        ([], "sweep", "at least one"),
        ({"days": []}, "sweep", "at least one value"),
        ([{"days": 1}, {"days": "two"}], "sweep.1.days", "set 1"),
        ({"region": ["EU"], "days": [1, "x"]}, "sweep.1.days", "expected int"),
        ([{"weeks": 1}], "sweep.0.weeks", "declares no parameter"),
        ([{"days": float("inf")}], "sweep.0.days", "finite"),
        ({"a": list(range(30)), "b": list(range(30))}, "sweep", "900 parameter sets"),
    ]
    for sweep, field, words in cases:
        with pytest.raises(InvalidInput, match=words) as refused:
            service.create_job(OWNER, {**base, "sweep": sweep})
        assert refused.value.field == field, refused.value.message
    job = service.create_job(OWNER, base)
    with pytest.raises(InvalidInput) as refused:
        service.update_job(OWNER, job.id, {"sweep": [{"days": "two"}]})
    assert refused.value.field == "sweep.0.days"
    with pytest.raises(InvalidInput) as refused:
        service.create_job(
            OWNER, {**base, "checks": [{"value": "rows", "op": "=~", "threshold": 1}]}
        )
    assert refused.value.field == "checks.0.op"
    assert len(service.list_jobs(OWNER).jobs) == 1 and count(service, Run) == 0


# -- recorded values, checks and alerts --------------------------------------------------


class Inbox(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        import json

        Inbox.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def inbox() -> Iterator[str]:
    Inbox.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_recorded_and_glued_values_checks_and_a_value_alert(
    service: Service, worker: Worker, inbox: str
) -> None:
    alert = {"kind": "webhook", "url": inbox, "on": ["value"], "value": "rows",
             "op": "<", "threshold": 1000}  # fmt: skip
    glued = service.create_job(
        OWNER, {"name": "glued", "notebook": GLUED, "notifications": [alert]}
    )
    checked = service.create_job(
        OWNER,
        {
            "name": "checked",
            "notebook": REPORT,
            "parameters": {"days": 2},
            "checks": [{"value": "rows", "op": ">=", "threshold": 1000}],
        },
    )
    missing = service.create_job(
        OWNER,
        {"name": "missing", "notebook": REPORT,
         "checks": [{"value": "revenue", "op": ">", "threshold": 0}]},
    )  # fmt: skip
    runs = [service.run_job(OWNER, job.id) for job in (glued, checked, missing)]
    done = [wait_for_run(service, run.id, timeout=240) for run in runs]

    assert done[0].status == "succeeded", done[0].error
    assert done[0].values == {
        "total": 42, "label": "glued text", "breakdown": {"a": 1, "b": [2, 3]}, "rows": 5,
    }  # fmt: skip
    assert done[1].status == "failed" and done[1].error is not None
    assert done[1].error.ename == "CheckFailed" and "rows" in done[1].error.evalue
    assert done[1].values["rows"] == 20  # kept although the run failed
    assert done[2].status == "failed" and done[2].error is not None
    assert done[2].error.ename == "CheckFailed" and "revenue" in done[2].error.evalue

    wait_until(lambda: Inbox.received, timeout=30, what="the value alert")
    (message,) = Inbox.received
    assert message["event"] == "value"
    assert message["value"] == {"name": "rows", "value": 5, "op": "<", "threshold": 1000}
    assert message["run"]["values"]["rows"] == 5


def test_values_are_read_from_outputs_and_compared() -> None:
    notebook = {
        "cells": [
            {"cell_type": "code", "outputs": [
                {"output_type": "display_data", "data": {VALUE_MIME: {"name": "n", "value": 1}}},
                {"output_type": "display_data",
                 "data": {"application/scrapbook.scrap.json+json":
                          {"name": "s", "data": "[1, 2]", "encoder": "json", "version": 2}}},
                {"output_type": "display_data",
                 "data": {"application/scrapbook.scrap.pandas+json":
                          {"name": "df", "data": "...", "encoder": "pandas", "version": 2}}},
                {"output_type": "display_data", "data": {VALUE_MIME: {"name": "n", "value": 2}}},
            ]},
            {"cell_type": "markdown", "source": "no outputs"},
        ]
    }  # fmt: skip
    assert extract_values(notebook) == {"n": 2, "s": [1, 2]}
    assert holds(3, ">=", 3) and not holds("3", ">=", 3) and holds(None, "!=", 1)
    assert failed_check({"n": 2}, [{"value": "n", "op": "==", "threshold": 2}]) is None
    assert "no value 'm'" in (failed_check({}, [{"value": "m", "op": "<", "threshold": 1}]) or "")
    with pytest.raises(ValueError, match="not a JSON value"):
        record("x", float("nan"))
