"""End to end through a real jupyter_server: jobs and runs over REST, executed by the
embedded worker subprocess on real kernels, outputs, logs, statistics and metrics."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api, eventually

pytestmark = pytest.mark.slow

TRIVIAL = "trivial.ipynb"  # parameter x: int = 1; prints x * 2


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "embedded_workers": True}


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted((match.group(2) or "{}")[1:-1].split(","))) if labels else ""
        if found.strip(",") == wanted:
            return float(match.group(3))
    return 0.0


async def _metrics(jp_fetch: Any) -> str:
    response = await jp_fetch("metrics")
    return str(response.body.decode())


def _injected_source(notebook: dict[str, Any]) -> str:
    cells = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1
    source = cells[0]["source"]
    return "".join(source) if isinstance(source, list) else str(source)


async def test_job_run_output_log_stats(api: Api, jp_fetch: Any) -> None:
    before = await _metrics(jp_fetch)
    job = await api.json(
        "POST",
        "jobs",
        {
            "name": "double it",
            "notebook": TRIVIAL,
            "parameters": {"x": 21},
            "trigger": {"kind": "manual"},
            "output_formats": ["ipynb", "html"],
            "tags": ["e2e"],
        },
        status=201,
    )
    assert job["status"] == "active" and job["next_fire_at"] is None and job["last_run"] is None
    assert {"id", "owner", "created_at", "updated_at", "parameters", "trigger"} <= set(job)

    queued = await api.json("POST", f"jobs/{job['id']}/run", status=201)
    assert queued["status"] in ("queued", "running") and queued["trigger"] == "manual"
    run = await api.wait_run(queued["id"])
    assert run["status"] == "succeeded", run
    assert run["parameters"] == {"x": 21} and run["error"] is None
    assert run["progress"]["done"] == run["progress"]["total"] > 0
    assert run["duration_seconds"] > 0 and run["started_at"] and run["finished_at"]

    # The executed notebook, with the injected parameters and their effect.
    response = await api.request("GET", f"runs/{run['id']}/output")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/x-ipynb+json"
    notebook = json.loads(response.body)
    assert "x = 21" in _injected_source(notebook)
    outputs = [o.get("text", "") for c in notebook["cells"] for o in c.get("outputs", [])]
    assert any("42" in "".join(text) for text in outputs)

    # HTML is a sandboxed download, never a page of the server's origin.
    response = await api.request("GET", f"runs/{run['id']}/output", params={"format": "html"})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert b"42" in response.body

    # The log, tailed with offsets.
    response = await api.request("GET", f"runs/{run['id']}/log")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/plain")
    text = response.body.decode()
    assert "42" in text
    offset = int(response.headers["X-Next-Offset"])
    assert offset == len(response.body)
    response = await api.request("GET", f"runs/{run['id']}/log", params={"offset": 10})
    assert response.body == text.encode()[10:]
    response = await api.request("GET", f"runs/{run['id']}/log", params={"offset": offset})
    assert response.body == b"" and int(response.headers["X-Next-Offset"]) == offset

    # A run with a parameter override; then statistics over both.
    override = await api.json("POST", f"jobs/{job['id']}/run", {"parameters": {"x": 5}}, status=201)
    assert override["parameters"] == {"x": 5}
    assert (await api.wait_run(override["id"]))["status"] == "succeeded"
    stats = await api.json("GET", f"jobs/{job['id']}/stats")
    assert stats["runs"] == 2 and stats["succeeded"] == 2 and stats["failed"] == 0
    assert stats["success_rate"] == 1.0
    assert stats["duration_p50_seconds"] > 0 and stats["duration_p95_seconds"] > 0
    assert stats["last_success_at"] and stats["last_failure_at"] is None

    again = await api.json("GET", f"jobs/{job['id']}")
    assert again["last_run"]["id"] == override["id"]
    page = await api.json("GET", "runs", params={"job_id": job["id"], "status": "succeeded"})
    assert [r["id"] for r in page["runs"]] == [override["id"], run["id"]]

    # Rerun repeats the parameters of the run it repeats.
    rerun = await api.json("POST", f"runs/{run['id']}/rerun", status=201)
    assert rerun["parameters"] == {"x": 21} and rerun["id"] != run["id"]
    assert (await api.wait_run(rerun["id"]))["status"] == "succeeded"

    # The metrics moved: three more succeeded runs, their durations, a live worker.
    async def moved() -> str | None:
        text = await _metrics(jp_fetch)
        done = _metric(text, "jupyter_sched_runs_total", status="succeeded")
        if done - _metric(before, "jupyter_sched_runs_total", status="succeeded") >= 3:
            return text
        return None

    after = await eventually(moved, timeout=20)
    count = "jupyter_sched_run_duration_seconds_count"
    assert (
        _metric(after, count, status="succeeded") - _metric(before, count, status="succeeded") >= 3
    )
    assert _metric(after, "jupyter_sched_live_workers") >= 1
    assert _metric(after, "jupyter_sched_active_jobs") >= 1
    assert "jupyter_sched_queue_depth" in after and "jupyter_sched_runs_running" in after


async def test_interval_job_runs_on_its_own(api: Api, jp_fetch: Any) -> None:
    before = await _metrics(jp_fetch)
    job = await api.json(
        "POST",
        "jobs",
        {
            "name": "every 2 s",
            "notebook": TRIVIAL,
            "trigger": {"kind": "interval", "every_seconds": 2},
        },
        status=201,
    )
    assert job["next_fire_at"] is not None

    async def two_succeeded() -> list[dict[str, Any]]:
        page = await api.json("GET", "runs", params={"job_id": job["id"], "status": "succeeded"})
        return page["runs"] if len(page["runs"]) >= 2 else []

    runs = await eventually(two_succeeded, timeout=60)
    assert all(r["trigger"] == "schedule" for r in runs)
    fires = sorted(datetime.fromisoformat(r["scheduled_for"]) for r in runs)
    assert (fires[1] - fires[0]).total_seconds() % 2 == pytest.approx(0, abs=1e-3)

    paused = await api.json("POST", f"jobs/{job['id']}/pause")
    assert paused["status"] == "paused" and paused["next_fire_at"] is None

    async def late_observed() -> bool:
        text = await _metrics(jp_fetch)
        name = "jupyter_sched_fire_lateness_seconds_count"
        return _metric(text, name) - _metric(before, name) >= 2

    await eventually(late_observed, timeout=10)

    await api.json("DELETE", f"jobs/{job['id']}", status=204)
    await api.error("GET", f"jobs/{job['id']}", status=404)
    page = await api.json("GET", "runs", params={"job_id": job["id"]})
    assert page["runs"] == []


async def test_cancel_a_running_run(api: Api) -> None:
    job = await api.json(
        "POST",
        "jobs",
        {"name": "sleeper", "notebook": "sleep.ipynb", "parameters": {"seconds": 600}},
        status=201,
    )
    run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
    await api.wait_run(run["id"], until={"running"})
    cancelling = await api.json("POST", f"runs/{run['id']}/cancel")
    assert cancelling["id"] == run["id"]
    final = await api.wait_run(run["id"], timeout=30)
    assert final["status"] == "cancelled", final
    error = await api.error("POST", f"runs/{run['id']}/cancel", status=409)
    assert "finished" in error["message"]


async def test_failing_notebook_records_the_error(api: Api) -> None:
    job = await api.json("POST", "jobs", {"name": "boom", "notebook": "fail.ipynb"}, status=201)
    run = await api.wait_run((await api.json("POST", f"jobs/{job['id']}/run", status=201))["id"])
    assert run["status"] == "failed"
    assert run["error"]["ename"] and run["error"]["cell_index"] is not None
    stats = await api.json("GET", f"jobs/{job['id']}/stats")
    assert stats["failed"] == 1 and stats["success_rate"] == 0.0 and stats["last_failure_at"]
    # The output notebook is kept on failure too.
    response = await api.request("GET", f"runs/{run['id']}/output")
    assert response.code == 200


async def test_symlink_swapped_in_after_creation_fails_the_run(
    api: Api, jp_root_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.ipynb"
    secret.write_text((jp_root_dir / TRIVIAL).read_text().replace("y = x * 2", "y = 'LEAKED'"))
    (jp_root_dir / "swap.ipynb").write_text((jp_root_dir / TRIVIAL).read_text())
    job = await api.json("POST", "jobs", {"name": "swap", "notebook": "swap.ipynb"}, status=201)

    (jp_root_dir / "swap.ipynb").unlink()
    (jp_root_dir / "swap.ipynb").symlink_to(secret)

    run = await api.wait_run((await api.json("POST", f"jobs/{job['id']}/run", status=201))["id"])
    assert run["status"] == "failed"
    assert run["error"]["ename"] == "PathOutsideRoot"
    assert "outside the server root" in run["error"]["evalue"]
    log = await api.request("GET", f"runs/{run['id']}/log")
    assert b"outside the server root" in log.body and b"LEAKED" not in log.body
    await api.error("GET", f"runs/{run['id']}/output", status=404)
