"""The extension as a process manager and as configuration: traitlets with environment
fallbacks, the embedded worker restarted when it dies and stopped with the server (no kernel
left behind), and the hub set-up: PostgreSQL + Redis with a separate worker process."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from traitlets.config import Config

from jupyter_sched.app import SchedApp
from jupyter_sched.config import Settings
from jupyter_sched.supervisor import worker_env

from .conftest import Api, eventually


def test_traitlets_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JUPYTER_SCHED_DB_URL", "postgresql+psycopg://u@db/sched")
    monkeypatch.setenv("JUPYTER_SCHED_REDIS_URL", "redis://queue:6379/0")
    monkeypatch.setenv("JUPYTER_SCHED_DATA_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("JUPYTER_SCHED_SECRET", "s3cret")
    app = SchedApp()
    assert app.db_url == "postgresql+psycopg://u@db/sched"
    assert app.redis_url == "redis://queue:6379/0"
    assert app.data_dir == str(tmp_path / "shared")
    assert app.secret == "s3cret"
    assert app.embedded_workers is False  # workers run elsewhere with Redis

    configured = SchedApp(
        config=Config({"SchedApp": {"db_url": "sqlite:////x.db", "redis_url": None}})
    )
    assert configured.db_url == "sqlite:////x.db"  # a config file beats the environment
    assert configured.redis_url is None and configured.embedded_workers is True


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("JUPYTER_SCHED_"):
            monkeypatch.delenv(name)
    app = SchedApp()
    assert app.db_url is None and app.redis_url is None
    assert app.embedded_workers is True and app.run_ticker is True
    assert app.data_dir.endswith("sched")
    assert app.worker_queues == ["default"]
    argv = app.worker_argv()
    assert argv[:5] == [sys.executable, "-m", "jupyter_sched.cli", "worker", "--exit-with-parent"]
    assert argv[argv.index("-c") + 1] == "2" and argv[argv.index("-q") + 1] == "default"
    help_text = SchedApp.class_get_help()
    for name in ("db_url", "redis_url", "data_dir", "embedded_workers", "max_body_bytes"):
        assert f"SchedApp.{name}" in help_text


def test_worker_env_is_the_servers_deployment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JUPYTER_SCHED_REDIS_URL", "redis://elsewhere/0")
    settings = Settings(data_dir=tmp_path, root_dir=tmp_path / "root")
    env = worker_env(settings)
    assert "JUPYTER_SCHED_REDIS_URL" not in env  # the server's settings, not its environment
    assert env["JUPYTER_SCHED_DATA_DIR"] == str(tmp_path)
    assert env["JUPYTER_SCHED_ROOT_DIR"] == str(tmp_path / "root")
    assert env["PATH"] == os.environ["PATH"]


def _kernels_of(pid: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if any("ipykernel" in part for part in p.cmdline())
    ]


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


class TestIdleEmbeddedWorker:
    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any]) -> dict[str, Any]:
        # No kernels kept ready after a run (they would keep the worker for minutes).
        return {**sched_config, "embedded_workers": True, "worker_idle_exit_seconds": 1.0,
                "prestart_kernels": False}  # fmt: skip

    async def test_an_idle_worker_exits_and_work_starts_it_again(
        self, api: Api, sched_app: SchedApp
    ) -> None:
        worker = sched_app.worker
        assert worker is not None
        first_pid = worker.pid
        assert first_pid is not None
        first = psutil.Process(first_pid)

        async def idle() -> bool:
            health = json.loads((await api.request("GET", "health")).body)
            return bool(health["embedded_worker"] == "idle" and health["status"] == "ok")

        # Nothing to do: the worker leaves by itself (no restart counted), health stays ok.
        await eventually(idle, timeout=60)
        assert not first.is_running() and worker.restarts == 0
        # A run asked for through the API starts it again, and the run succeeds.
        job = await api.json(
            "POST", "jobs", {"name": "wake", "notebook": "trivial.ipynb"}, status=201
        )
        run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
        assert (await api.wait_run(run["id"]))["status"] == "succeeded"
        assert worker.pid not in (None, first_pid) and worker.restarts == 0
        # Idle again; a run enqueued by another process (the CLI) starts it too.
        await eventually(idle, timeout=60)
        settings = sched_app.service.settings
        env = {**worker_env(settings), "JUPYTER_SCHED_USER": job["owner"]}
        cli = subprocess.run(
            [sys.executable, "-m", "jupyter_sched.cli", "jobs", "run", job["id"]],
            env=env, cwd=settings.root_dir, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        runs = (await api.json("GET", f"runs?job_id={job['id']}"))["runs"]
        latest = max(runs, key=lambda r: r["queued_at"])
        assert latest["id"] != run["id"]
        assert (await api.wait_run(latest["id"]))["status"] == "succeeded"


class TestEmbeddedWorker:
    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any]) -> dict[str, Any]:
        return {**sched_config, "embedded_workers": True, "worker_concurrency": 1}

    async def _running_sleeper(self, api: Api) -> dict[str, Any]:
        job = await api.json(
            "POST",
            "jobs",
            {"name": "sleeper", "notebook": "sleep.ipynb", "parameters": {"seconds": 600}},
            status=201,
        )
        run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
        return await api.wait_run(run["id"], until={"running"})  # type: ignore[no-any-return]

    @pytest.mark.slow
    async def test_a_killed_worker_is_restarted_and_its_kernels_killed(
        self, api: Api, sched_app: SchedApp
    ) -> None:
        worker = sched_app.worker
        assert worker is not None
        first_pid = worker.pid
        assert first_pid is not None
        run = await self._running_sleeper(api)
        (listed,) = (await api.json("GET", "workers"))["workers"]
        assert (listed["pid"], listed["running"]) == (first_pid, 1)
        kernels = await eventually(lambda: _async(_kernels_of(first_pid)), timeout=20)
        # The watchdog has listed the worker's kernels (it looks every few seconds).
        kernel_pids = {kernel.pid for kernel in kernels}
        await eventually(lambda: _async(kernel_pids <= worker.watched_pids), timeout=20)

        os.kill(first_pid, signal.SIGKILL)

        async def restarted() -> bool:
            # 503 while the worker restarts (degraded), 200 again once it runs.
            response = await api.request("GET", "health")
            health = json.loads(response.body)
            assert response.code == (200 if health["status"] == "ok" else 503)
            return (
                health["embedded_worker"] == "running"
                and health["embedded_worker_restarts"] == 1
                and worker.pid != first_pid
            )

        await eventually(restarted, timeout=30)
        await eventually(lambda: _async(not _alive(kernels)), timeout=10)
        # The run of the dead worker is reaped once its lease runs out.
        lost = await api.wait_run(run["id"], timeout=30)
        assert lost["status"] == "lost"
        # The new worker takes work.
        job = await api.json(
            "POST", "jobs", {"name": "after", "notebook": "trivial.ipynb"}, status=201
        )
        after = await api.json("POST", f"jobs/{job['id']}/run", status=201)
        assert (await api.wait_run(after["id"]))["status"] == "succeeded"

    async def test_the_worker_gets_its_settings_on_stdin_not_in_its_environment(
        self, api: Api, sched_app: SchedApp
    ) -> None:
        worker = sched_app.worker
        assert worker is not None and worker.pid is not None
        # It joined the server's deployment: it runs the server's jobs.
        job = await api.json(
            "POST", "jobs", {"name": "env", "notebook": "trivial.ipynb"}, status=201
        )
        run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
        assert (await api.wait_run(run["id"]))["status"] == "succeeded"
        # ... yet its environment, which a kernel could read from /proc, names none of it.
        environ = psutil.Process(worker.pid).environ()
        assert not [key for key in environ if key.startswith("JUPYTER_SCHED_")]
        assert "JUPYTER_TOKEN" not in environ and "JUPYTERHUB_API_TOKEN" not in environ
        assert "--settings-from-stdin" in psutil.Process(worker.pid).cmdline()

    @pytest.mark.slow
    async def test_stop_leaves_no_worker_and_no_kernel(self, api: Api, sched_app: SchedApp) -> None:
        worker = sched_app.worker
        assert worker is not None and worker.pid is not None
        pid = worker.pid
        run = await self._running_sleeper(api)
        await eventually(lambda: _async(_kernels_of(pid)), timeout=20)
        descendants = psutil.Process(pid).children(recursive=True)

        await sched_app.stop_extension()
        # It stopped on SIGTERM by itself (not killed after the grace the server gives it):
        # it exited cleanly and wrote why its run ended.
        assert worker.proc is not None and worker.proc.returncode == 0
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert not _alive(descendants)
        final = sched_app.service.get_run(sched_app.owner_of(None), run["id"])
        assert final.status == "lost"  # aborted by the stopping worker, retried if allowed
        assert final.error is not None and final.error.ename == "WorkerShutdown"
        await sched_app.stop_extension()  # a second stop is a no-op


async def _async(value: Any) -> Any:
    return value


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
class TestHubDeployment:
    """PostgreSQL history, Redis queue, no embedded worker: a separate worker process."""

    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any], pg: Any, redis_srv: Any) -> dict[str, Any]:
        redis_srv.flush()
        return {
            **sched_config,
            "db_url": pg.create_database(f"api_{uuid.uuid4().hex[:12]}"),
            "redis_url": redis_srv.url,
            "secret": "hub-secret",
        }

    async def test_separate_worker_runs_the_jobs(self, api: Api, sched_app: SchedApp) -> None:
        assert sched_app.worker is None
        health = await api.json("GET", "health")
        assert health["embedded_worker"] == "disabled" and health["ticker"] == "running"

        env = worker_env(sched_app.service.settings)
        worker = subprocess.Popen(
            [sys.executable, "-m", "jupyter_sched.cli", "worker", "-c", "1", "--grace", "1"],
            env=env,
        )
        try:
            job = await api.json(
                "POST",
                "jobs",
                {"name": "hub", "notebook": "trivial.ipynb", "parameters": {"x": 4}},
                status=201,
            )
            run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
            done = await api.wait_run(run["id"])
            assert done["status"] == "succeeded", done
            output = await api.request("GET", f"runs/{run['id']}/output")
            assert output.code == 200 and b"x = 4" in output.body
            workers = await api.json("GET", "workers")
            assert [w["pid"] for w in workers["workers"]] == [worker.pid]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)


def test_every_setting_is_a_traitlet(tmp_path: Path) -> None:
    from jupyter_server.serverapp import ServerApp

    # root_dir and allow_hidden are the server's own (its root and its contents manager's
    # rule for hidden files); everything else can be set in jupyter_server_config.
    names = {f.name for f in dataclasses.fields(Settings)} - {"root_dir", "allow_hidden"}
    assert names <= set(SchedApp.class_trait_names(config=True)), names - set(
        SchedApp.class_trait_names(config=True)
    )
    configured = {"smtp_port": 2525, "smtp_starttls": True, "prestart_kernels": False,
                  "kill_grace_seconds": 0.25, "retention_sweep_seconds": 60.0,
                  "notify_max_attempts": 2, "chromium_path": "/opt/chrome/chrome"}  # fmt: skip
    app = SchedApp(config=Config({"SchedApp": configured}))
    app.serverapp = ServerApp(root_dir=str(tmp_path))
    settings = app.sched_settings()
    assert {name: getattr(settings, name) for name in configured} == configured
    assert settings.root_dir == tmp_path
    # and the embedded worker gets them too
    assert worker_env(settings)["JUPYTER_SCHED_PRESTART_KERNELS"] in {"0", "false", "False"}
    assert worker_env(settings)["JUPYTER_SCHED_CHROMIUM_PATH"] == "/opt/chrome/chrome"
