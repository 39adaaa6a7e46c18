"""The report builders' REST contract without execution: backfill and its preview,
batches, summaries (JSON and CSV), sweeps, checks and value alerts; every bad input is a
422 naming its field, and a refused request makes nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from .conftest import Api

REPORT = "report.ipynb"
DAILY = {"kind": "cron", "cron": "0 6 * * *", "timezone": "Europe/Paris"}


async def counts(api: Api) -> tuple[int, int, int]:
    jobs = await api.json("GET", "jobs?limit=200")
    runs = await api.json("GET", "runs?limit=200")
    batches = await api.json("GET", "batches?limit=200")
    return len(jobs["jobs"]), len(runs["runs"]), len(batches["batches"])


async def test_backfill_preview_batch_and_summary(api: Api) -> None:
    job = await api.json(
        "POST",
        "jobs",
        {
            "name": "daily",
            "notebook": REPORT,
            "trigger": DAILY,
            "sweep": [{"days": 1}, {"days": 2}],
        },
        status=201,
    )
    assert job["sweep"] == [{"days": 1}, {"days": 2}] and job["checks"] == []
    week = {"start": "2026-03-01T00:00:00+01:00", "end": "2026-03-07T23:00:00+01:00"}
    preview = await api.json("POST", f"jobs/{job['id']}/backfill/preview", week)
    assert preview == {
        "count": 7, "counted_all": True, "runs": 14,
        "first": "2026-03-01T05:00:00Z", "last": "2026-03-07T05:00:00Z",
    }  # fmt: skip
    assert await counts(api) == (1, 0, 0)  # a preview makes nothing
    batch = await api.json(
        "POST", f"jobs/{job['id']}/backfill", {**week, "max_parallel": 3}, status=201
    )
    assert (batch["kind"], batch["total"], batch["max_parallel"]) == ("backfill", 14, 3)
    assert batch["progress"] == {"done": 0, "failed": 0, "running": 0, "queued": 14}
    assert await api.json("GET", f"batches/{batch['id']}") == batch
    assert (await api.json("GET", f"batches?job_id={job['id']}"))["batches"] == [batch]

    summary = await api.json("GET", f"jobs/{job['id']}/summary?batch={batch['id']}")
    assert summary["batch"] == batch and summary["parameters"] == ["days"]
    rows = summary["rows"]
    assert [r["batch_index"] for r in rows] == list(range(14))
    assert [r["parameters"]["days"] for r in rows] == [1, 2] * 7
    assert rows[0]["scheduled_for"] == rows[1]["scheduled_for"] == "2026-03-01T05:00:00Z"
    assert {r["status"] for r in rows} == {"queued"}
    runs = (await api.json("GET", f"runs?job_id={job['id']}&limit=200"))["runs"]
    assert {r["batch_id"] for r in runs} == {batch["id"]} and {r["trigger"] for r in runs} == {
        "backfill"
    }
    assert all(r["values"] == {} for r in runs)

    response = await api.request("GET", f"jobs/{job['id']}/summary?batch={batch['id']}&format=csv")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert len(table) == 14 and table[0]["days"] == "1" and table[0]["status"] == "queued"


async def test_bad_input_is_a_422_naming_the_field_and_makes_nothing(api: Api) -> None:
    daily = await api.json(
        "POST",
        "jobs",
        {"name": "windowed", "notebook": REPORT, "trigger": DAILY,
         "start_at": "2026-01-01T00:00:00Z", "end_at": "2026-12-31T00:00:00Z"},
        status=201,
    )  # fmt: skip
    manual = await api.json("POST", "jobs", {"name": "manual", "notebook": REPORT}, status=201)
    before = await counts(api)
    backfills: list[tuple[str, Any, str]] = [
        (daily["id"], {"start": "2026-03-10T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        (daily["id"], {"start": "2025-06-01T00:00:00Z", "end": "2026-01-10T00:00:00Z"}, "start"),
        (daily["id"], {"start": "2026-12-01T00:00:00Z", "end": "2027-01-10T00:00:00Z"}, "end"),
        (manual["id"], {"start": "2026-03-01T00:00:00Z", "end": "2026-03-10T00:00:00Z"}, "trigger"),
        (daily["id"], {"start": "2026-03-01T00:00:00Z", "end": 5}, "end"),
        (daily["id"], {"start": "2026-03-01T00:00:00Z"}, "end"),
        (
            daily["id"],
            {"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:00Z", "max_parallel": "2"},
            "max_parallel",
        ),
    ]
    for job_id, body, field in backfills:
        for path in (f"jobs/{job_id}/backfill", f"jobs/{job_id}/backfill/preview"):
            error = await api.error("POST", path, body, status=422)
            assert error["field"] == field, (body, error)
    jobs: list[tuple[dict[str, Any], str]] = [
        ({"sweep": []}, "sweep"),
        ({"sweep": {"days": []}}, "sweep"),
        ({"sweep": [{"weeks": 1}]}, "sweep.0.weeks"),
        ({"sweep": [{"days": 1}, {"days": "x"}]}, "sweep.1.days"),
        ({"sweep": {"region": ["EU", 3]}}, "sweep.1.region"),
        ({"sweep": [{"1x": 1}]}, "sweep.0.1x"),
        ({"checks": [{"value": "rows", "op": "~=", "threshold": 1}]}, "checks.0.op"),
        ({"checks": [{"value": "", "op": "<", "threshold": 1}]}, "checks.0.value"),
        (
            {"notifications": [{"kind": "webhook", "url": "http://x/h", "on": ["value"]}]},
            "notifications.0.value",
        ),
        ({"max_parallel": 0}, "max_parallel"),
    ]
    for fields, field in jobs:
        body = {"name": "bad", "notebook": REPORT, **fields}
        error = await api.error("POST", "jobs", body, status=422)
        assert error["field"] == field, (fields, error)
    # numbers JSON cannot carry (a sweep value that overflows a float, NaN, Infinity)
    head = '{"name": "bad", "notebook": "report.ipynb", '
    for raw, field in (
        (head + '"sweep": [{"days": 1e400}]}', "sweep.0.days"),
        (head + '"sweep": [{"days": 1}, {"days": NaN}]}', "sweep.1.days"),
        (head + '"sweep": {"days": [1, NaN]}}', "sweep.days.1"),
        (head + '"checks": [{"value": "rows", "op": "<", "threshold": -Infinity}]}',
         "checks.0.threshold"),
    ):  # fmt: skip
        error = await api.error("POST", "jobs", raw=raw, status=422)
        assert error["field"] == field and "finite" in error["message"], (raw, error)
    error = await api.error("PATCH", f"jobs/{manual['id']}", {"sweep": [{"days": "x"}]}, status=422)
    assert error["field"] == "sweep.0.days"
    assert await counts(api) == before
    error = await api.error("GET", f"jobs/{manual['id']}/summary?batch=nope", status=404)
    assert error["field"] == "batch"
    error = await api.error("GET", f"jobs/{manual['id']}/summary?format=xml", status=422)
    assert error["field"] == "format"


async def test_value_alerts_and_checks_are_kept_on_the_job(api: Api) -> None:
    alert = {"kind": "webhook", "url": "http://127.0.0.1:9/h", "on": ["value"],
             "value": "rows", "op": "<", "threshold": 1000}  # fmt: skip
    check = {"value": "rows", "op": ">=", "threshold": 1}
    job = await api.json(
        "POST",
        "jobs",
        {"name": "checked", "notebook": REPORT, "notifications": [alert], "checks": [check]},
        status=201,
    )
    assert job["checks"] == [check]
    assert job["notifications"][0] | alert == job["notifications"][0]
    changed = await api.json("PATCH", f"jobs/{job['id']}", {"checks": [], "max_parallel": 4})
    assert changed["checks"] == [] and changed["max_parallel"] == 4


class TestSummaryOfTheLatestRuns:
    """``GET jobs/{id}/summary`` without ``batch``: the job's newest runs, executed."""

    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any]) -> dict[str, Any]:
        return {**sched_config, "embedded_workers": True}

    async def test_the_newest_runs_with_their_values(self, api: Api) -> None:
        job = await api.json(
            "POST", "jobs", {"name": "report", "notebook": REPORT, "parameters": {"days": 1}},
            status=201,
        )  # fmt: skip
        made = []
        for days in (1, 2, 3):
            body = {"parameters": {"days": days, "region": f"R{days}"}}
            made.append(await api.json("POST", f"jobs/{job['id']}/run", body, status=201))
        for run in made:
            assert (await api.wait_run(run["id"], timeout=240))["status"] == "succeeded"

        summary = await api.json("GET", f"jobs/{job['id']}/summary", params={"limit": 2})
        assert summary["job_id"] == job["id"] and summary["batch"] is None
        assert summary["parameters"] == ["days", "region"]
        assert summary["values"] == ["region", "reported_for", "rows"]
        rows = summary["rows"]  # the newest two, oldest first
        assert [row["run_id"] for row in rows] == [made[1]["id"], made[2]["id"]]
        # (the notebook's scheduled_for is a parameter too, but the row's own column)
        assert [(row["parameters"]["days"], row["parameters"]["region"]) for row in rows] == [
            (2, "R2"),
            (3, "R3"),
        ]
        assert [row["values"]["reported_for"] for row in rows] == [
            row["parameters"]["scheduled_for"] for row in rows
        ]
        assert [(row["values"]["rows"], row["values"]["region"]) for row in rows] == [
            (20, "R2"),
            (30, "R3"),
        ]
        assert {row["status"] for row in rows} == {"succeeded"}
        assert all(row["duration_seconds"] > 0 for row in rows)
        everything = await api.json("GET", f"jobs/{job['id']}/summary")
        assert [row["run_id"] for row in everything["rows"]] == [run["id"] for run in made]

        response = await api.request(
            "GET", f"jobs/{job['id']}/summary", params={"limit": 2, "format": "csv"}
        )
        assert response.code == 200 and response.headers["Content-Type"].startswith("text/csv")
        disposition = response.headers["Content-Disposition"]
        assert disposition == f'attachment; filename="summary-{job["id"].lower()}.csv"'
        table = list(csv.DictReader(io.StringIO(response.body.decode())))
        assert [(row["run_id"], row["days"], row["rows"]) for row in table] == [
            (made[1]["id"], "2", "20"),
            (made[2]["id"], "3", "30"),
        ]
        # a value named like a parameter gets its own column beside the parameter's
        assert [(row["region"], row["value.region"]) for row in table] == [
            ("R2", "R2"),
            ("R3", "R3"),
        ]
        assert {row["status"] for row in table} == {"succeeded"}
