"""What runs produced, seen through the API: thumbnails of their last image output, the
comparison of two runs, and PDF outputs; runs executed by the server's worker on real
kernels, on the example sales report."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from jupyter_sched.renders import THUMBNAIL_MAX_BYTES

from .conftest import Api
from .test_api_auth import TokenPerUser

pytestmark = pytest.mark.slow

SALES = "reports/sales_report.ipynb"


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "embedded_workers": True}


@pytest.fixture
def server_config() -> dict[str, Any]:
    return {"identity_provider_class": TokenPerUser}


@pytest.fixture
def api(api: Api) -> Api:
    """The API as alice (bob is another user)."""
    return api.as_user({"Authorization": "token alice-secret"})


async def sales_job(api: Api, **fields: Any) -> Any:
    body = {"name": "sales", "notebook": SALES, **fields}
    return await api.json("POST", "jobs", body, status=201)


async def finished(api: Api, job_id: str, parameters: dict[str, Any] | None = None) -> Any:
    run = await api.json("POST", f"jobs/{job_id}/run", {"parameters": parameters or {}},
                         status=201)  # fmt: skip
    run = await api.wait_run(run["id"])
    assert run["status"] == "succeeded", run
    return run


async def test_a_chart_run_has_a_thumbnail_and_a_run_without_images_has_none(api: Api) -> None:
    job = await sales_job(api)
    run = await finished(api, job["id"])
    assert run["has_thumbnail"] is True
    response = await api.request("GET", f"runs/{run['id']}/thumbnail")
    assert response.code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert len(response.body) <= THUMBNAIL_MAX_BYTES
    with Image.open(io.BytesIO(response.body)) as image:
        assert image.width <= 240
        assert abs(image.width / image.height - 2.0) < 0.05  # the chart is 8 x 4 inches
    listed = await api.json("GET", "runs", params={"job_id": job["id"]})
    assert [r["has_thumbnail"] for r in listed["runs"]] == [True]

    plain = await api.json("POST", "jobs", {"name": "plain", "notebook": "trivial.ipynb"},
                           status=201)  # fmt: skip
    bare = await finished(api, plain["id"])
    assert bare["has_thumbnail"] is False
    error = await api.error("GET", f"runs/{bare['id']}/thumbnail", status=404)
    assert "no thumbnail" in error["message"]
    await api.error("GET", "runs/nosuchrun/thumbnail", status=404)


async def test_compare_lists_changed_parameters_table_and_chart(api: Api) -> None:
    job = await sales_job(api)
    eu = await finished(api, job["id"], {"region": "EU", "days": 7})
    us = await finished(api, job["id"], {"region": "US", "days": 10})
    diff = await api.json("GET", f"runs/{eu['id']}/compare/{us['id']}")
    assert diff["a"]["id"] == eu["id"] and diff["b"]["id"] == us["id"]
    assert [(p["name"], p["a"], p["b"]) for p in diff["parameters"]] == [
        ("days", 7, 10), ("region", "EU", "US"),
    ]  # fmt: skip
    assert diff["notebook_diff"] and diff["notebook_diff"][0]["op"] == "patch"
    changed = [c for c in diff["cells"] if c["change"] == "modified"]
    table = next(c for c in changed if "daily" in (c["source_a"] or "") and
                 c["source_a"].rstrip().endswith("daily"))  # fmt: skip
    assert table["outputs_changed"] and not table["source_changed"]
    assert table["outputs_a"][0]["kind"] == "text" and "2024-01-07" in table["outputs_a"][0]["text"]
    assert "2024-01-10" in table["outputs_b"][0]["text"]
    chart = next(c for c in changed if "display(fig)" in (c["source_a"] or ""))
    images = [(o["kind"], o["media_type"]) for o in chart["outputs_a"] + chart["outputs_b"]]
    assert images == [("image", "image/png")] * 2
    assert chart["outputs_a"][0]["data"] != chart["outputs_b"][0]["data"]
    assert diff["summary"]["modified"] >= 3  # parameters cell, table, summary, chart

    # Another user's runs do not exist for bob.
    bob = api.as_user({"Authorization": "token bob-secret"})
    await bob.error("GET", f"runs/{eu['id']}/compare/{us['id']}", status=404)
    await api.error("GET", f"runs/{eu['id']}/compare/nosuchrun", status=404)

    # A run that has not written its output yet is named in a 409.
    slow = await api.json("POST", "jobs", {"name": "slow", "notebook": "sleep.ipynb"},
                          status=201)  # fmt: skip
    pending = await api.json("POST", f"jobs/{slow['id']}/run", {}, status=201)
    error = await api.error("GET", f"runs/{eu['id']}/compare/{pending['id']}", status=409)
    assert pending["id"] in error["message"] and error["field"] == "other_id"
    await api.json("POST", f"runs/{pending['id']}/cancel")


async def test_compare_lists_the_recorded_values_that_differ(api: Api) -> None:
    job = await api.json("POST", "jobs", {"name": "rows", "notebook": "report.ipynb"},
                         status=201)  # fmt: skip
    week = await finished(api, job["id"], {"days": 7})
    month = await finished(api, job["id"], {"days": 30})
    diff = await api.json("GET", f"runs/{week['id']}/compare/{month['id']}")
    values = {v["name"]: (v["a"], v["b"]) for v in diff["values"]}
    assert values["rows"] == (70, 300)
    assert sorted(values) == ["reported_for", "rows"]  # each run has its own date; region same
