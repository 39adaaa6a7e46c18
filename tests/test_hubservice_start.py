"""The hub's scheduler service refuses to start without its credentials file: it never falls
back, silently, to an embedded SQLite history that no worker or admin shares."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from traitlets.config import Config

from jupyter_sched.terminal import ExitCode

from .conftest import REPO

DEPLOY_CONFIG = REPO / "deploy" / "jupyterhub_config.py"


def hub_service(env_file: Path) -> dict[str, Any]:
    """The scheduler service as ``deploy/jupyterhub_config.py`` registers it with the hub,
    when the hub process is told its settings file is ``env_file``."""
    config = Config()
    namespace = {"get_config": lambda: config, "__file__": str(DEPLOY_CONFIG)}
    previous = os.environ.get("JUPYTER_SCHED_ENV_FILE")
    os.environ["JUPYTER_SCHED_ENV_FILE"] = str(env_file)
    try:
        exec(compile(DEPLOY_CONFIG.read_text(), str(DEPLOY_CONFIG), "exec"), namespace)
    finally:
        if previous is None:
            del os.environ["JUPYTER_SCHED_ENV_FILE"]
        else:
            os.environ["JUPYTER_SCHED_ENV_FILE"] = previous
    (service,) = config.JupyterHub.services
    return service  # type: ignore[no-any-return]


def start(service: dict[str, Any], home: Path) -> subprocess.CompletedProcess[str]:
    """Start the service the way the hub does: its command, its environment, nothing else
    of ours (the hub passes a managed service only its own variables)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), **service["environment"]}
    return subprocess.run(
        service["command"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_settings_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "etc" / "sched.env"
    done = start(hub_service(missing), tmp_path)
    assert done.returncode == ExitCode.REFUSED, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "JUPYTER_SCHED_DB_URL" in lines[0] and str(missing) in lines[0]
    # nothing was created: no embedded history, no data folder
    assert not list(tmp_path.rglob("sched.db"))


def test_a_settings_file_without_the_database_url_is_refused(tmp_path: Path) -> None:
    env_file = tmp_path / "sched.env"
    env_file.write_text("# the admin forgot the database\nJUPYTER_SCHED_REDIS_URL=redis://x\n")
    done = start(hub_service(env_file), tmp_path)
    assert done.returncode == ExitCode.REFUSED, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no history database" in done.stderr and str(env_file) in done.stderr
    assert not list(tmp_path.rglob("sched.db"))
