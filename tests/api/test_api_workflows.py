"""Events, webhooks and dependent jobs through the REST API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from jupyter_sched.app import SchedApp
from jupyter_sched.models import Job

from .conftest import Api


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "webhook_rate_per_minute": 3.0}


async def test_event_runs_the_callers_waiting_jobs(api: Api) -> None:
    event = {"kind": "event", "event": "sales.loaded"}
    waiting = await api.json(
        "POST", "jobs", {"name": "w", "notebook": "payload.ipynb", "trigger": event}, status=201
    )
    await api.json(
        "POST",
        "jobs",
        {"name": "o", "notebook": "trivial.ipynb", "trigger": {"kind": "event", "event": "x"}},
        status=201,
    )
    fired = await api.json("POST", "events/sales.loaded", {"rows": 3}, status=202)
    assert [(r["job_id"], r["trigger"]) for r in fired["runs"]] == [(waiting["id"], "event")]
    assert fired["runs"][0]["parameters"] == {"event_payload": {"rows": 3}}
    assert (await api.json("POST", "events/nobody.waits", status=202))["runs"] == []
    bad = await api.request("POST", "events/not%20a%20name")
    assert bad.code == 422 and b'"field": "event"' in bad.body


async def test_webhook_needs_its_token_and_no_session(
    api: Api, jp_serverapp: Any, sched_app: SchedApp
) -> None:
    job = await api.json("POST", "jobs", {"name": "hook", "notebook": "payload.ipynb"}, status=201)
    issued = await api.json("POST", f"jobs/{job['id']}/webhook", status=201)
    token = issued["token"]
    assert issued["url"].endswith(f"/sched/api/webhooks/{job['id']}")
    assert (await api.json("GET", f"jobs/{job['id']}"))["webhook"] is True
    with sched_app.service.db.read() as session:
        stored = session.scalar(select(Job.webhook_token_hash).where(Job.id == job["id"]))
    assert stored and token not in stored

    outsider = api.as_user({})  # no Jupyter token, no cookie
    path = f"webhooks/{job['id']}"
    ran = await outsider.request(
        "POST", path, {"ci": "build 42"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert ran.code == 201, ran.body
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"token {token}"}):
        refused = await outsider.request("POST", path, headers=headers)
        assert refused.code == 401, (headers, refused.code)
    rotated = (await api.json("POST", f"jobs/{job['id']}/webhook", status=201))["token"]
    assert (
        await outsider.request("POST", path, headers={"Authorization": f"Bearer {token}"})
    ).code == 401
    auth = {"Authorization": f"Bearer {rotated}"}
    assert (await outsider.request("POST", path, headers=auth)).code == 201
    assert (await outsider.request("POST", path, headers=auth)).code == 201
    limited = await outsider.request("POST", path, headers=auth)
    assert limited.code == 429 and b"rate_limited" in limited.body
    runs = await api.json("GET", "runs", params={"job_id": job["id"]})
    assert len(runs["runs"]) == 3  # the refused calls ran nothing
    assert {r["trigger"] for r in runs["runs"]} == {"webhook"}
    await api.json("DELETE", f"jobs/{job['id']}/webhook", status=204)
    assert (await outsider.request("POST", path, headers=auth)).code == 401


async def test_after_trigger_cycle_and_forced_delete(api: Api) -> None:
    a = await api.json("POST", "jobs", {"name": "A", "notebook": "trivial.ipynb"}, status=201)
    after_a = {"kind": "after", "jobs": [a["id"]], "condition": "success"}
    b = await api.json(
        "POST", "jobs", {"name": "B", "notebook": "trivial.ipynb", "trigger": after_a}, status=201
    )
    assert b["trigger"] == {**after_a, "pass_results": False}
    cycle = await api.request(
        "PATCH", f"jobs/{a['id']}", {"trigger": {"kind": "after", "jobs": [b["id"]]}}
    )
    assert cycle.code == 400
    assert b'"field": "trigger.jobs"' in cycle.body and b"cycle" in cycle.body
    refused = await api.request("DELETE", f"jobs/{a['id']}")
    assert refused.code == 409 and b"B (" in refused.body
    await api.json("DELETE", f"jobs/{a['id']}", params={"force": "true"}, status=204)
    assert (await api.json("GET", f"jobs/{b['id']}"))["trigger"] == {"kind": "manual"}
