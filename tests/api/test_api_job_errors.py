"""A job whose stored trigger can no longer be fired, through the REST API: listed and
shown as stored, set aside by the server's ticker with its reason, and back in service
when resumed or given a new trigger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema
from sqlalchemy import update

from jupyter_sched.app import SchedApp
from jupyter_sched.models import Job

from .conftest import Api, eventually

GONE_ZONE = {"kind": "cron", "cron": "* * * * *", "timezone": "Mars/Olympus"}


async def test_a_job_that_cannot_fire_shows_why_and_can_be_put_back(
    api: Api, sched_app: SchedApp
) -> None:
    document = await api.json("GET", "openapi.json")

    def conforms(value: Any) -> None:
        schema = {"$ref": "#/components/schemas/Job", "components": document["components"]}
        jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)

    body = {"name": "zone", "notebook": "trivial.ipynb", "trigger": {**GONE_ZONE}}
    body["trigger"]["timezone"] = "Europe/Paris"
    job = await api.json("POST", "jobs", body, status=201)
    other = await api.json(
        "POST",
        "jobs",
        {"name": "other", "notebook": "trivial.ipynb", "trigger": {"kind": "manual"}},
        status=201,
    )
    # What a tzdata upgrade without the zone does to what was stored; and the job is due.
    with sched_app.service.db.write() as session:
        session.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(trigger=GONE_ZONE, next_fire_at=datetime.now(UTC))
        )

    listed = (await api.json("GET", "jobs"))["jobs"]
    assert {j["id"] for j in listed} == {job["id"], other["id"]}
    shown = await api.json("GET", f"jobs/{job['id']}")
    assert shown["trigger"] == GONE_ZONE

    async def set_aside() -> Any:
        current = await api.json("GET", f"jobs/{job['id']}")
        return current if current["status"] == "error" else None

    aside = await eventually(set_aside, timeout=30)
    conforms(aside)
    assert aside["error"] == (
        "the job cannot be fired: trigger.timezone: unknown timezone 'Mars/Olympus'"
    )
    assert aside["next_fire_at"] is None
    errors = (await api.json("GET", "jobs", params={"status": "error"}))["jobs"]
    assert [j["id"] for j in errors] == [job["id"]]
    assert (await api.json("GET", f"jobs/{other['id']}"))["status"] == "active"

    refused = await api.error("POST", f"jobs/{job['id']}/resume", status=422)
    assert refused["field"] == "trigger.timezone" and "Mars/Olympus" in refused["message"]
    assert (await api.json("GET", f"jobs/{job['id']}"))["status"] == "error"

    patched = await api.json(
        "PATCH", f"jobs/{job['id']}", {"trigger": {**GONE_ZONE, "timezone": "Asia/Tokyo"}}
    )
    conforms(patched)
    assert (patched["status"], patched["error"]) == ("active", None)
    assert patched["next_fire_at"] is not None
