"""The systemd units of ``deploy/`` are usable as an admin copies them: systemd accepts them,
the real CLI accepts their command lines, and their users, settings file, working folder and
program are the ones the admin guide (docs/admin/hub.md) installs.

The hub acceptance test (tests/hub) also starts its workers from the worker unit and checks
that the hub starts the service with the service unit's command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from jupyter_sched.cli import main

from .hub.units import DEPLOY, exec_start, localize, read_unit

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "admin" / "hub.md"
HUB_CONFIG = DEPLOY / "jupyterhub_config.py"
UNITS = ("jupyter-sched-service.service", "jupyter-sched-worker@.service")
#: This checkout's installation stands for the guide's /opt/jupyterhub.
HERE = {"/opt/jupyterhub": sys.prefix}


def _guide() -> str:
    return GUIDE.read_text()


def _guide_installation() -> dict[str, str]:
    """What the guide's install steps create: the virtualenv, the settings file, the data
    folder."""
    text = _guide()
    venv = re.search(r"python3 -m venv (\S+)", text)
    settings = re.search(r"install -m 0600 /dev/null (\S+)", text)
    data_dir = re.search(r"^JUPYTER_SCHED_DATA_DIR=(\S+)$", text, re.MULTILINE)
    assert venv and settings and data_dir, "the guide's install steps changed"
    return {"venv": venv[1], "settings": settings[1], "data_dir": data_dir[1]}


@pytest.mark.parametrize("name", UNITS)
def test_systemd_accepts_the_unit(tmp_path: Path, name: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # Only the installation's path changes (systemd checks that the program exists).
    copy = tmp_path / name
    copy.write_text(localize((DEPLOY / name).read_text(), HERE))
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    # systemd only warns about unknown keys and bad values: none may be printed.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("name", UNITS)
def test_the_cli_accepts_the_units_command(name: str) -> None:
    program, *args = exec_start(read_unit(DEPLOY / name), HERE)
    assert Path(program) == Path(sys.prefix) / "bin" / "jupyter-sched"
    assert Path(program).is_file()  # the project's console script
    with main.make_context("jupyter-sched", list(args)) as ctx:
        command_name, command, rest = main.resolve_command(ctx, list(args))
        assert command is not None and command_name in ("service", "worker")
        with command.make_context(command_name, rest, parent=ctx) as sub:
            if command_name == "worker":
                assert (sub.params["concurrency"], sub.params["grace"]) == (2, 30.0)


def test_a_bad_option_in_a_units_command_would_be_refused() -> None:
    # The parse above is the CLI's own: a misspelt option fails it.
    with main.make_context("jupyter-sched", ["worker", "--concurency", "2"]) as ctx:
        command_name, command, rest = main.resolve_command(ctx, ["worker", "--concurency", "2"])
        assert command is not None
        with pytest.raises(click.NoSuchOption):
            command.make_context(command_name or "worker", rest, parent=ctx)


@pytest.mark.parametrize("name", UNITS)
def test_the_unit_matches_the_admin_guide(name: str) -> None:
    unit = read_unit(DEPLOY / name)["Service"]
    installed = _guide_installation()
    program = exec_start({"Service": unit}, {})[0]
    assert program == f"{installed['venv']}/bin/jupyter-sched"
    # Root, as the guide's "What runs as whom" says of the service and the workers.
    assert unit["User"] == ["root"]
    assert re.search(r"^\| worker \(`jupyter sched worker`, systemd\) \| root \|", _guide(), re.M)
    assert re.search(
        r"^\| scheduler service \(`jupyter sched service`.*?\| root \|", _guide(), re.M
    )
    # The settings file the guide writes, which the hub's configuration reads by default.
    assert unit["EnvironmentFile"][0] == installed["settings"]
    assert f'"JUPYTER_SCHED_ENV_FILE", "{installed["settings"]}"' in HUB_CONFIG.read_text()
    # Started in the data folder the guide creates; files it makes are root's alone.
    assert unit["WorkingDirectory"] == [installed["data_dir"]]
    assert f"mkdir -m 0711 -p {installed['data_dir']}" in _guide()
    assert unit["UMask"] == ["0077"]


def test_the_guides_steps_name_the_units_of_deploy() -> None:
    text = _guide()
    copied = re.findall(r"cp deploy/(\S+) /etc/systemd/system/", text)
    assert copied and all((DEPLOY / unit).is_file() for unit in copied)
    for unit in re.findall(r"`deploy/([\w@.-]+\.service)`", text):
        assert (DEPLOY / unit).is_file(), unit
    enabled = [
        name for line in re.findall(r"systemctl enable --now (.+)", text) for name in line.split()
    ]
    # an instance (``worker@1``) of a template (``worker@.service``)
    files = {re.sub(r"@\w+$", "@", name) + ".service" for name in enabled}
    assert files and all((DEPLOY / name).is_file() for name in files), files
