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

pytestmark = pytest.mark.slow

SALES = "reports/sales_report.ipynb"


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "embedded_workers": True}


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
