"""The REST contract without execution: jobs, pagination, PATCH semantics, query
validation, preview, notebook parameters, workers and health (no worker runs here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jupyter_sched.app import SchedApp
from jupyter_sched.config import default_owner
from jupyter_sched.ticker import fire_due_jobs

from .conftest import Api, eventually

HELLO = "reports/hello.ipynb"


def job_body(**fields: Any) -> dict[str, Any]:
    return {"name": "hello", "notebook": HELLO, **fields}


async def test_create_follows_the_contract(api: Api) -> None:
    body = {
        "name": "daily sales",
        "notebook": "reports/sales_report.ipynb",
        "parameters": {"region": "EU", "days": 7},
        "trigger": {"kind": "cron", "cron": "0 6 * * 1-5", "timezone": "Europe/Paris"},
        "kernel": "python3",
        "retries": 2,
        "retry_delay_seconds": 30,
        "retry_backoff": 2.0,
        "timeout_seconds": 3600,
        "overlap": "skip",
        "misfire": "run_once",
        "output_formats": ["ipynb", "html"],
        "tags": ["finance"],
    }
    job = await api.json("POST", "jobs", body, status=201)
    for key, value in body.items():
        assert job[key] == value, key
    assert job["owner"] == default_owner()
    assert job["status"] == "active" and job["last_run"] is None
    # The trigger in the words the preview gives it, so every client words it alike.
    preview = await api.json("POST", "preview", {"trigger": body["trigger"]})
    assert job["trigger_description"] == preview["description"]
    fire = datetime.fromisoformat(job["next_fire_at"])
    assert fire.utcoffset() == timedelta(0) and fire > datetime.now(UTC)
    assert job == await api.json("GET", f"jobs/{job['id']}")


async def test_list_filters_and_cursor_pagination(api: Api) -> None:
    ids = []
    for i in range(5):
        job = await api.json(
            "POST", "jobs", job_body(name=f"j{i}", tags=["even"] if i % 2 == 0 else []), status=201
        )
        ids.append(job["id"])
    newest_first = ids[::-1]

    seen, cursor = [], None
    while True:
        page = await api.json(
            "GET", "jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first

    manual = await api.json("POST", "preview", {"trigger": {"kind": "manual"}})
    listed = await api.json("GET", "jobs")
    assert {j["trigger_description"] for j in listed["jobs"]} == {manual["description"]}

    tagged = await api.json("GET", "jobs", params={"tag": "even"})
    assert [j["id"] for j in tagged["jobs"]] == newest_first[::2]

    await api.json("POST", f"jobs/{ids[0]}/pause")
    paused = await api.json("GET", "jobs", params={"status": "paused"})
    assert [j["id"] for j in paused["jobs"]] == [ids[0]]
    active = await api.json("GET", "jobs", params={"status": "active"})
    assert len(active["jobs"]) == 4


async def test_patch_absent_unchanged_null_clears(api: Api) -> None:
    job = await api.json(
        "POST",
        "jobs",
        job_body(
            timeout_seconds=60, tags=["a"], trigger={"kind": "interval", "every_seconds": 600}
        ),
        status=201,
    )
    patched = await api.json(
        "PATCH", f"jobs/{job['id']}", {"timeout_seconds": None, "name": "renamed"}
    )
    assert patched["timeout_seconds"] is None and patched["name"] == "renamed"
    assert patched["tags"] == ["a"] and patched["trigger"] == job["trigger"]
    assert patched["version"] == job["version"] + 1

    error = await api.error("PATCH", f"jobs/{job['id']}", {"name": None}, status=422)
    assert error["field"] == "name"
    error = await api.error("PATCH", f"jobs/{job['id']}", {"version": job["version"]}, status=409)
    assert error["field"] == "version" and error["reason"] == "conflict"

    cron = await api.json(
        "PATCH", f"jobs/{job['id']}", {"trigger": {"kind": "cron", "cron": "0 3 * * *"}}
    )
    assert cron["trigger"]["kind"] == "cron" and cron["next_fire_at"].endswith("03:00:00Z")
    words = await api.json("POST", "preview", {"trigger": cron["trigger"]})
    assert cron["trigger_description"] == words["description"] != job["trigger_description"]
    queue = await api.json("PATCH", f"jobs/{job['id']}", {"queue": None})
    assert queue["queue"] == "default"


async def test_a_fired_once_job_stays_editable(api: Api, sched_app: SchedApp) -> None:
    # A job made a minute ago to fire a few seconds ago, fired at that instant (the
    # ticker's pass with its `now`): none of it depends on how fast a request is answered.
    soon = datetime.now(UTC) - timedelta(seconds=5)
    service = sched_app.service
    created = service.create_job(
        sched_app.owner_of(None),
        job_body(trigger={"kind": "once", "at": soon.isoformat()}, parameters={"name": "Ada"}),
        now=soon - timedelta(minutes=1),
    )
    fire_due_jobs(service.db, service.settings, soon)  # the server's ticker may come first
    job = await api.json("GET", f"jobs/{created.id}")

    async def fired() -> bool:
        runs = await api.json("GET", "runs", params={"job_id": job["id"]})
        return len(runs["runs"]) == 1

    await eventually(fired)
    # Its trigger is in the past now, but a PATCH that leaves it alone does not care.
    patched = await api.json(
        "PATCH", f"jobs/{job['id']}", {"parameters": {"name": "Bob"}, "tags": ["again"]}
    )
    assert patched["parameters"] == {"name": "Bob"} and patched["tags"] == ["again"]
    assert patched["trigger"] == job["trigger"] and patched["next_fire_at"] is None
    renamed = await api.json("PATCH", f"jobs/{job['id']}", {"name": "renamed", "retries": 1})
    assert renamed["name"] == "renamed" and renamed["version"] == job["version"] + 2
    # What a PATCH does change is still checked.
    past = {"kind": "once", "at": soon.isoformat()}
    error = await api.error("PATCH", f"jobs/{job['id']}", {"trigger": past}, status=422)
    assert error["field"] == "trigger.at"
    error = await api.error("PATCH", f"jobs/{job['id']}", {"parameters": {"nope": 1}}, status=422)
    assert error["field"] == "parameters.nope"
    later = datetime.now(UTC) + timedelta(hours=1)
    window = {"start_at": later.isoformat(), "end_at": (later - timedelta(minutes=1)).isoformat()}
    error = await api.error("PATCH", f"jobs/{job['id']}", window, status=422)
    assert error["field"] == "end_at"
    again = await api.json(
        "PATCH", f"jobs/{job['id']}", {"trigger": {"kind": "once", "at": later.isoformat()}}
    )
    assert again["trigger"]["kind"] == "once" and again["next_fire_at"] is not None


async def test_pause_resume_delete(api: Api) -> None:
    job = await api.json(
        "POST", "jobs", job_body(trigger={"kind": "interval", "every_seconds": 3600}), status=201
    )
    paused = await api.json("POST", f"jobs/{job['id']}/pause")
    assert paused["status"] == "paused" and paused["next_fire_at"] is None
    resumed = await api.json("POST", f"jobs/{job['id']}/resume")
    assert resumed["status"] == "active" and resumed["next_fire_at"] is not None
    run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
    assert run["status"] == "queued"

    await api.json("DELETE", f"jobs/{job['id']}", status=204)
    for method, path in [
        ("GET", f"jobs/{job['id']}"),
        ("DELETE", f"jobs/{job['id']}"),
        ("POST", f"jobs/{job['id']}/pause"),
        ("GET", f"jobs/{job['id']}/stats"),
        ("GET", f"runs/{run['id']}"),
    ]:
        error = await api.error(method, path, status=404)
        assert error["reason"] == "not_found"


async def test_run_now_checks_overrides(api: Api) -> None:
    job = await api.json("POST", "jobs", job_body(parameters={"name": "Ada"}), status=201)
    error = await api.error(
        "POST", f"jobs/{job['id']}/run", {"parameters": {"name": 3}}, status=422
    )
    assert error["field"] == "parameters.name"
    error = await api.error(
        "POST", f"jobs/{job['id']}/run", {"parameters": {"nope": 1}}, status=422
    )
    assert error["field"] == "parameters.nope"
    error = await api.error("POST", f"jobs/{job['id']}/run", {"params": {}}, status=422)
    assert error["field"] == "params"
    run = await api.json(
        "POST", f"jobs/{job['id']}/run", {"parameters": {"name": "Bob"}}, status=201
    )
    assert run["parameters"] == {"name": "Bob"}
    page = await api.json("GET", "runs", params={"job_id": job["id"], "status": "queued"})
    assert [r["id"] for r in page["runs"]] == [run["id"]]
    # A queued run has no output yet, and an empty log.
    error = await api.error("GET", f"runs/{run['id']}/output", status=404)
    assert "output" in error["message"]
    response = await api.request("GET", f"runs/{run['id']}/log")
    assert response.code == 200 and response.body == b""
    assert response.headers["X-Next-Offset"] == "0"
    cancelled = await api.json("POST", f"runs/{run['id']}/cancel")
    assert cancelled["status"] == "cancelled"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("jobs", {"limit": "0"}, "limit"),
        ("jobs", {"limit": "201"}, "limit"),
        ("jobs", {"limit": "ten"}, "limit"),
        ("jobs", {"status": "sleeping"}, "status"),
        ("jobs", {"tag": ""}, "tag"),
        ("runs", {"status": "done"}, "status"),
        ("runs", {"since": "yesterday"}, "since"),
        ("runs", {"since": "1700000000"}, "since"),
        ("runs", {"until": "2026-01-01T00:00:00"}, "until"),
        ("runs", {"limit": "-1"}, "limit"),
        ("runs", {"cursor": ""}, "cursor"),
        ("notebooks/parameters", {}, "path"),
    ],
)
async def test_bad_query_values_name_the_field(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    error = await api.error("GET", path, params=params, status=422)
    assert error["field"] == field and field in error["message"]


async def test_run_queries_and_output_formats(api: Api) -> None:
    job = await api.json("POST", "jobs", job_body(), status=201)
    run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
    queued_at = datetime.fromisoformat(run["queued_at"])
    before = (queued_at - timedelta(seconds=1)).isoformat()
    after = (queued_at + timedelta(seconds=1)).isoformat()
    assert len((await api.json("GET", "runs", params={"since": before}))["runs"]) == 1
    assert (await api.json("GET", "runs", params={"since": after}))["runs"] == []
    assert len((await api.json("GET", "runs", params={"until": after}))["runs"]) == 1
    # An unescaped "+" of an offset arrives as a space; it is understood.
    plus = await api.request("GET", f"runs?since={before}")
    assert "+" in before and plus.code == 200 and len(json.loads(plus.body)["runs"]) == 1
    error = await api.error(
        "GET", f"runs/{run['id']}/output", params={"format": "docx"}, status=422
    )
    assert error["field"] == "format"
    error = await api.error("GET", f"runs/{run['id']}/log", params={"offset": "-3"}, status=422)
    assert error["field"] == "offset"


async def test_preview(api: Api) -> None:
    preview = await api.json(
        "POST",
        "preview",
        {
            "trigger": {"kind": "cron", "cron": "30 6 * * 1-5", "timezone": "Europe/Paris"},
            "count": 3,
        },
    )
    assert preview["description"]
    fires = [datetime.fromisoformat(t) for t in preview["next"]]
    assert len(fires) == 3 and fires == sorted(fires)
    assert all(f.utcoffset() == timedelta(0) and f.weekday() < 5 for f in fires)
    interval = await api.json(
        "POST", "preview", {"trigger": {"kind": "interval", "every_seconds": 90}}
    )
    assert len(interval["next"]) == 5 and interval["description"]
    error = await api.error(
        "POST", "preview", {"trigger": {"kind": "cron", "cron": "99 * * * *"}}, status=422
    )
    assert error["field"] == "trigger.cron"
    error = await api.error(
        "POST", "preview", {"trigger": {"kind": "interval", "every_seconds": 0.5}}, status=422
    )
    assert error["field"] == "trigger.every_seconds"


async def test_notebook_parameters(api: Api) -> None:
    got = await api.json("GET", "notebooks/parameters", params={"path": "types.ipynb"})
    assert [(p["name"], p["type"], p["default"]) for p in got["parameters"]] == [
        ("s", "str", "a"),
        ("i", "int", 1),
        ("f", "float", 1.5),
        ("l", "list", [1]),
        ("d", "dict", {"k": 1}),
    ]
    assert (await api.json("GET", "notebooks/parameters", params={"path": "no_params.ipynb"})) == {
        "parameters": []
    }
    error = await api.error(
        "GET", "notebooks/parameters", params={"path": "missing.ipynb"}, status=404
    )
    assert error["field"] == "path"


async def test_health_and_workers_without_embedded_worker(api: Api) -> None:
    health = await api.json("GET", "health")
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["ticker"] == "running" and health["embedded_worker"] == "disabled"
    assert health["load"] == {"queued": {}, "running": 0, "active_jobs": 0, "live_workers": 0}
    assert await api.json("GET", "workers") == {"workers": []}


class TestConfiguredOwner:
    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any]) -> dict[str, Any]:
        return {**sched_config, "owner": "team-reports"}

    async def test_owner_traitlet(self, api: Api) -> None:
        job = await api.json("POST", "jobs", job_body(), status=201)
        assert job["owner"] == "team-reports"


async def test_polling_is_cheap_with_etags(api: Api) -> None:
    job = await api.json("POST", "jobs", job_body(), status=201)
    first = await api.request("GET", f"jobs/{job['id']}")
    etag = first.headers["Etag"]
    unchanged = await api.request("GET", f"jobs/{job['id']}", headers={"If-None-Match": etag})
    assert unchanged.code == 304 and not unchanged.body
    await api.json("POST", f"jobs/{job['id']}/pause")
    changed = await api.request("GET", f"jobs/{job['id']}", headers={"If-None-Match": etag})
    assert changed.code == 200 and changed.headers["Etag"] != etag
