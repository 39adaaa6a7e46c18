"""The set-up the README promises: `make run` and the CLI on one scheduler, the Makefile's
lockfile check, the panel's TypeScript build, the version's one place, the tree left clean."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from trove_classifiers import classifiers as known_classifiers

import jupyter_sched

from .conftest import REPO


def _make_env(**extra: str) -> dict[str, str]:
    """The environment of a `make` started from these tests, not from the outer `make`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "MAKE"))}
    env.pop("MFLAGS", None)
    return {**env, **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_make_run_and_the_cli_see_one_scheduler(tmp_path: Path) -> None:
    port, token = _free_port(), "setup-test-token"
    # Jupyter's own directories in a temporary place; nothing of the scheduler's is set,
    # so both sides use its default (the Jupyter data dir), as on a user's machine.
    env = _make_env(
        JUPYTER_PORT=str(port),
        JUPYTER_TOKEN=token,
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
    )
    # The panel's build and the install are not what this test is about.
    command = ["make", "-o", "labextension", "-o", ".venv/.installed", "run"]
    server = subprocess.Popen(
        [*command, "LAB_ARGS=--no-browser"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/sched/api"
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(f"{api}/health", headers=headers), timeout=5
                ) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "make run did not serve on $JUPYTER_PORT"
            time.sleep(0.5)
        body = json.dumps(
            {"name": "from the server", "notebook": "hello.ipynb", "trigger": {"kind": "manual"}}
        ).encode()
        request = urllib.request.Request(f"{api}/jobs", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as reply:
            job = json.loads(reply.read())
        listed = subprocess.run(
            [str(REPO / ".venv" / "bin" / "jupyter"), "sched", "jobs", "list", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert [j["id"] for j in json.loads(listed.stdout)["jobs"]] == [job["id"]]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def test_make_checks_the_lockfile_on_a_fresh_clone(tmp_path: Path) -> None:
    # A fresh clone: nothing installed. The editable install must not run jlpm (its state
    # file would make the lockfile check look done); `jlpm install --immutable` must run.
    for name in ("Makefile", "package.json", "yarn.lock", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    fresh = subprocess.run(
        ["make", "-n", "install"], cwd=tmp_path, env=_make_env(), capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    install = fresh.index("pip install -q -e")
    assert "SKIP_JUPYTER_BUILDER=1" in fresh[fresh.rindex("\n", 0, install) : install]
    assert fresh.index("jlpm install --immutable") > install
    # After something else ran `jlpm install` (yarn's state file exists), still checked.
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed").touch()
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".yarn-state.yml").touch()
    again = subprocess.run(
        ["make", "-n", "install"], cwd=tmp_path, env=_make_env(), capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    assert "jlpm install --immutable" in again


@pytest.mark.slow
@pytest.mark.timeout(600)  # two whole TypeScript builds: minutes on a loaded machine
def test_typescript_builds_again_after_lib_is_removed(tmp_path: Path) -> None:
    # In a copy, inside a folder of its own: the build writes nothing beside the checkout,
    # and after `rm -rf lib` it emits everything again.
    checkout = tmp_path / "parent" / "checkout"
    shutil.copytree(REPO / "labextension" / "src", checkout / "labextension" / "src")
    for name in ("tsconfig.json", "package.json"):
        shutil.copy(REPO / name, checkout / name)
    (checkout / "node_modules").symlink_to(REPO / "node_modules")
    tsc = [str(REPO / "node_modules" / ".bin" / "tsc"), "--sourceMap"]
    for _ in range(2):
        built = subprocess.run(tsc, cwd=checkout, capture_output=True, text=True, check=False)
        assert built.returncode == 0, built.stdout + built.stderr
        assert (checkout / "lib" / "index.js").is_file()
        assert sorted(p.name for p in (tmp_path / "parent").iterdir()) == ["checkout"]
        shutil.rmtree(checkout / "lib")


def test_the_version_has_one_place() -> None:
    package = json.loads((REPO / "package.json").read_text())
    assert jupyter_sched.__version__ == package["version"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project
    # The changelog's first section is this version's.
    first = re.search(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert first and first.group(1) == package["version"]


def test_classifiers_are_pypi_classifiers() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert set(project["classifiers"]) <= known_classifiers
    assert "Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt" in project["classifiers"]


def test_browser_screenshots_go_to_an_ignored_folder(tmp_path: Path) -> None:
    where = subprocess.run(
        ["node", "--input-type=module", "-e",
         "const m = await import(process.argv[1]); console.log(m.screenshotPath('x.png'))",
         (REPO / "ui-tests" / "lab.mjs").as_uri()],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    path = Path(where)
    assert REPO / "docs" not in path.parents
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(path)], cwd=REPO, check=False
    ).returncode
    assert ignored == 0, f"{path} is not ignored by git"


def test_make_test_fails_when_the_tests_change_the_tree(tmp_path: Path) -> None:
    # `make test` compares `git status` before and after the suite; here the "suite" is a
    # check target that leaves a file git neither tracks nor ignores.
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".gitignore").write_text("build/\nsuite.mk\n")
    env = _make_env()

    def make_test(recipe: str) -> subprocess.CompletedProcess[str]:
        # The real `test` recipe, whose inner `make` runs these stand-ins for the suite.
        (tmp_path / "suite.mk").write_text(f"system-deps install:\n\t@true\ncheck:\n\t{recipe}\n")
        return subprocess.run(
            ["make", "test", "MAKE=make -f suite.mk"], cwd=tmp_path, env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    clean = make_test("@true")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    dirty = make_test("touch left-behind.png")
    assert dirty.returncode != 0
    assert "+?? left-behind.png" in dirty.stdout and "make test changed" in dirty.stdout
