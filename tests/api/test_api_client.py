"""The HTTP client of the API (what the CLI uses in a hub user's terminal) against a real
server: every call returns the service's models, every error answer becomes the scheduler
error it stands for, and the CLI's user commands work through it with a token alone."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jupyter_sched import errors
from jupyter_sched.cli import main
from jupyter_sched.client import ServiceClient, error_from_response
from jupyter_sched.terminal import ExitCode

from .conftest import REPO, eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "embedded_workers": True}


@pytest.fixture
def service_url(http_server: Any, jp_http_port: int, jp_base_url: str) -> str:
    """The test server's base URL, served on its port (``http_server``) for real clients."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def token(jp_auth_header: dict[str, str]) -> str:
    return jp_auth_header["Authorization"].split(" ", 1)[1]


@pytest.fixture
def client(service_url: str, token: str, tmp_path: Path) -> ServiceClient:
    return ServiceClient(service_url, token, files_dir=tmp_path / "downloads")


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A blocking client call, off the loop the test server runs on."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def finished(client: ServiceClient, run_id: str) -> Any:
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        run = await call(client.get_run, "me", run_id)
        if run.finished_at is not None:
            return run
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.1)


async def test_every_call_returns_the_services_models(
    jp_serverapp: Any, client: ServiceClient, jp_root_dir: Path
) -> None:
    spec = {"name": "t", "notebook": "trivial.ipynb", "tags": ["a"],
            "output_formats": ["ipynb", "html"]}  # fmt: skip
    job = await call(client.create_job, "me", spec)
    assert job.name == "t" and job.trigger.kind == "manual"
    assert (await call(client.get_job, "me", job.id)).id == job.id
    page = await call(client.list_jobs, "me", tag="a", limit=5)
    assert [j.id for j in page.jobs] == [job.id]
    updated = await call(client.update_job, "me", job.id, {"parameters": {"x": 3}})
    assert updated.parameters == {"x": 3}
    assert (await call(client.pause_job, "me", job.id)).status == "paused"
    assert (await call(client.resume_job, "me", job.id)).status == "active"

    first = await finished(client, (await call(client.run_job, "me", job.id)).id)
    second = await finished(client, (await call(client.run_job, "me", job.id, {"x": 5})).id)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    workers = await call(client.workers)  # the one that ran them is heartbeating
    assert [w["concurrency"] for w in workers] == [2]
    assert second.parameters == {"x": 5}
    runs = await call(client.list_runs, "me", job_id=job.id, status="succeeded", limit=1)
    assert [r.id for r in runs.runs] == [second.id] and runs.next_cursor
    rest = await call(client.list_runs, "me", job_id=job.id, cursor=runs.next_cursor)
    assert [r.id for r in rest.runs] == [first.id] and rest.next_cursor is None
    diff = await call(client.compare_runs, "me", first.id, second.id)
    assert [(c.name, c.a, c.b) for c in diff.parameters] == [("x", 3, 5)]
    output = await call(client.run_output, "me", second.id)
    executed = json.loads(output.read_text())
    assert "10" in json.dumps(executed["cells"][-1]["outputs"])
    assert (await call(client.run_output, "me", second.id, "html")).read_text().startswith("<")
    log_file = await call(client.run_log_file, "me", second.id)
    assert log_file is not None and log_file.read_text()
    text, next_offset = await call(client.run_log, "me", second.id, 0)
    assert next_offset == len(text.encode())
    stats = await call(client.job_stats, "me", job.id)
    assert (stats.runs, stats.succeeded) == (2, 2)
    rerun = await finished(client, (await call(client.rerun, "me", second.id)).id)
    assert rerun.parameters == {"x": 5}

    one_off = await call(client.run_notebook, "me", "trivial.ipynb", {"x": 21},
                         output_formats=["html"])  # fmt: skip
    one_off = await finished(client, one_off.id)
    assert (one_off.job_id, one_off.status, one_off.output_formats) == (
        None, "succeeded", ["ipynb", "html"],
    )  # fmt: skip

    token = await call(client.create_webhook, "me", job.id)
    assert len(token) > 20 and (await call(client.get_job, "me", job.id)).webhook
    await call(client.delete_webhook, "me", job.id)
    event_job = await call(client.create_job, "me", {
        "name": "on-event", "notebook": "payload.ipynb",
        "trigger": {"kind": "event", "event": "data-ready"},
    })  # fmt: skip
    started = await call(client.fire_event, "me", "data-ready", {"rows": 3})
    assert [r.job_id for r in started] == [event_job.id]
    cancelled = await call(client.cancel_run, "me", started[0].id)
    assert cancelled.id == started[0].id
    await call(client.delete_job, "me", event_job.id)
    await call(client.delete_job, "me", job.id, force=True)
    assert (await call(client.list_jobs, "me")).jobs == []


async def test_error_answers_become_the_schedulers_errors(
    jp_serverapp: Any, client: ServiceClient, service_url: str
) -> None:
    with pytest.raises(errors.NotFound) as missing:
        await call(client.get_job, "me", "01NOSUCHJOB")
    assert "01NOSUCHJOB" in missing.value.message or missing.value.message
    with pytest.raises(errors.NotFound):
        await call(client.run_output, "me", "no/such run")
    bad = {"name": "x", "notebook": "trivial.ipynb", "trigger": {"kind": "cron", "cron": "no"}}
    with pytest.raises(errors.InvalidInput) as invalid:
        await call(client.create_job, "me", bad)
    assert invalid.value.field == "trigger.cron"
    with pytest.raises(errors.PathOutsideRoot) as outside:
        await call(client.run_notebook, "me", "../elsewhere.ipynb")
    assert outside.value.field == "notebook"
    job = await call(client.create_job, "me", {"name": "x", "notebook": "trivial.ipynb"})
    with pytest.raises(errors.SchedError) as cycle:
        await call(client.update_job, "me", job.id,
                   {"trigger": {"kind": "after", "jobs": [job.id]}})  # fmt: skip
    assert cycle.value.status_code in (400, 422)
    with pytest.raises(errors.TooLarge):
        await call(client.create_job, "me", {"name": "big", "notebook": "trivial.ipynb",
                                             "parameters": {"x": "y" * 100_000}})  # fmt: skip
    with pytest.raises(errors.CannotStart):
        await call(client.run_notebook, "me", "trivial.ipynb", dispatch=False)

    stranger = ServiceClient(service_url, "not-a-token")
    with pytest.raises(errors.Unauthorized) as refused:
        await call(stranger.list_jobs, "me")
    assert "JUPYTERHUB_API_TOKEN" in refused.value.message
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    nowhere = ServiceClient(f"http://127.0.0.1:{closed_port}/", "x")
    with pytest.raises(errors.Unavailable) as unreachable:
        await call(nowhere.list_runs, "me")
    assert "does not answer" in unreachable.value.message


def test_error_bodies_that_are_not_the_schedulers() -> None:
    conflict = error_from_response(409, b'{"message": "stale", "reason": "conflict"}', "u")
    assert isinstance(conflict, errors.Conflict) and conflict.message == "stale"
    by_status = error_from_response(429, b"<html>slow down</html>", "u")
    assert isinstance(by_status, errors.RateLimited)
    unknown = error_from_response(500, b'{"message": "internal error", "reason": "internal"}', "u")
    assert type(unknown) is errors.SchedError and unknown.message == "internal error"


async def test_cli_user_commands_through_the_api_with_a_token_alone(
    jp_serverapp: Any, service_url: str, token: str, tmp_path: Path, jp_root_dir: Path
) -> None:
    env = {
        "JUPYTER_SCHED_SERVICE_URL": service_url,
        "JUPYTERHUB_API_TOKEN": token,
        # Nothing of the deployment: a data dir the CLI would create if it opened one.
        "JUPYTER_SCHED_DATA_DIR": str(tmp_path / "no-deployment"),
        "JUPYTER_SCHED_ROOT_DIR": str(jp_root_dir),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def cli(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    created = await call(cli, "jobs", "create", "trivial.ipynb", "--every", "3600")
    assert created.exit_code == 0, created.output
    job_id = created.output.split()[1].rstrip(":")
    listed = await call(cli, "jobs", "list", "--json")
    assert [j["id"] for j in json.loads(listed.output)["jobs"]] == [job_id]
    shutil.copy(REPO / "tests" / "notebooks" / "trivial.ipynb", jp_root_dir / "reports" / "t.ipynb")
    # `run` goes to the workers, and says so when none runs: wait for the server's own.
    workers = ServiceClient(service_url, token).workers
    await eventually(lambda: asyncio.to_thread(workers), timeout=120)
    ran = await call(cli, "run", str(jp_root_dir / "reports" / "t.ipynb"), "-p", "x", "4")
    assert ran.exit_code == ExitCode.OK, ran.output
    assert "succeeded" in ran.output and str(tmp_path / "cache") in ran.output
    run_id = ran.output.split()[1].rstrip(":")
    shown = await call(cli, "runs", "show", run_id)
    assert shown.exit_code == 0 and "reports/t.ipynb" in shown.output
    missing = await call(cli, "runs", "show", "01NOSUCHRUN")
    assert missing.exit_code == ExitCode.REFUSED and len(missing.output.splitlines()) == 1
    for command in (["worker"], ["db", "upgrade"], ["prune"], ["scheduler"], ["service"]):
        refused = await call(cli, *command)
        assert refused.exit_code == ExitCode.REFUSED, (command, refused.output)
        assert "credentials" in refused.output and len(refused.output.splitlines()) == 1
        assert f"`jupyter sched {' '.join(command)}`" in refused.output
    assert (await call(cli, "worker", "--help")).exit_code == 0  # help needs no credential
    local = await call(cli, "run", "--local", str(jp_root_dir / "reports" / "t.ipynb"))
    assert local.exit_code == ExitCode.REFUSED and "--local" in local.output
    assert not (tmp_path / "no-deployment").exists()


async def test_backfills_batches_and_summaries_through_the_client(
    jp_serverapp: Any, client: ServiceClient
) -> None:
    job = await call(client.create_job, "me", {
        "name": "hourly", "notebook": "trivial.ipynb",
        "trigger": {"kind": "cron", "cron": "0 * * * *"},
    })  # fmt: skip
    await call(client.pause_job, "me", job.id)  # only the backfill runs
    window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:30:00Z"}
    preview = await call(client.backfill_preview, "me", job.id, window)
    assert (preview.count, preview.runs) == (2, 2)
    batch = await call(client.backfill, "me", job.id, window)
    assert (batch.kind, batch.total) == ("backfill", 2)
    assert [b.id for b in (await call(client.list_batches, "me", job_id=job.id)).batches] == [
        batch.id
    ]
    deadline = asyncio.get_running_loop().time() + 120
    while (batch := await call(client.get_batch, "me", batch.id)).progress.done < batch.total:
        assert asyncio.get_running_loop().time() < deadline, batch
        await asyncio.sleep(0.2)
    summary = await call(client.summary, "me", job.id, batch=batch.id)
    assert len(summary.rows) == 2 and summary.batch is not None
    csv = await call(client.summary_csv, "me", job.id, batch=batch.id)
    assert len(csv.strip().splitlines()) == 3  # a header and the two runs
    with pytest.raises(errors.NotFound):
        await call(client.get_batch, "me", "01NOSUCHBATCH")
