"""The Python environment and the proxy that a test hub and its users' servers run from.

Users' servers run as other Unix users, who cannot enter ``/root`` (where the developer's
virtualenv and Python live) nor, in CI, the folder of the checkout. So the hub tests build a
virtualenv from Debian's ``/usr/bin/python3`` in a world-readable place, with ``jupyterhub``,
``jupyterlab`` and this project installed from a wheel of a snapshot of the checkout, and
install ``configurable-http-proxy`` from npm beside it.

Both are cached under ``/var/tmp`` between test sessions, keyed by a hash of everything that
goes into them (for the virtualenv: the requirements below, the Python version and every file
of the project that the wheel is built from), so a second run is fast and a changed source
gives a new environment. A build happens under an exclusive lock and is marked complete only
at its end: a session killed halfway leaves an incomplete folder that the next build removes.
Environments unused for ``STALE_AFTER_SECONDS`` are removed by the next build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HubEnvironment", "ensure_hub_environment", "project_files"]

CACHE_ROOT = Path("/var/tmp")
BASE_PYTHON = "/usr/bin/python3"
#: What users' servers need beside the project (with its ``postgres`` extra, for the
#: scheduler service and the workers that will run from the same environment).
HUB_REQUIREMENTS = ("jupyterhub>=6.1,<7", "jupyterlab>=4.6,<5")
PROXY_PACKAGE = "configurable-http-proxy@5"
VENV_PREFIX = "jupyter-sched-hub-env"
PROXY_PREFIX = "jupyter-sched-hub-proxy"
STALE_AFTER_SECONDS = 3 * 24 * 3600
BUILD_TIMEOUT = 900.0
_COMPLETE = ".complete"
#: The project's files that its wheel is built from (``jupyter_sched/labextension`` is
#: added when the Lab panel is built; otherwise the wheel comes without the panel).
_PROJECT_FILES = (
    "pyproject.toml",
    "package.json",  # the version's one place
    "README.md",
    ".gitignore",
    "labextension/install.json",
)
_PROJECT_TREES = ("jupyter_sched", "jupyter-config")
_PREBUILT_PANEL = "jupyter_sched/labextension/static/style.js"


@dataclass(frozen=True)
class HubEnvironment:
    """A world-executable virtualenv with the hub, JupyterLab and the project, and the proxy."""

    venv: Path
    proxy_dir: Path

    @property
    def bin(self) -> Path:
        """The virtualenv's scripts folder (``jupyterhub``, ``jupyterhub-singleuser``, ...)."""
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def proxy_command(self) -> Path:
        """The ``configurable-http-proxy`` executable."""
        return self.proxy_dir / "node_modules" / ".bin" / "configurable-http-proxy"


def ensure_hub_environment(repo: Path) -> HubEnvironment:
    """Return the cached environment for the project in ``repo``, building what is missing."""
    files = project_files(repo)
    venv_key = _digest(
        [*HUB_REQUIREMENTS, _command_output([BASE_PYTHON, "--version"])],
        {name: repo / name for name in files},
    )
    proxy_key = _digest([PROXY_PACKAGE, _command_output(["node", "--version"])], {})
    venv = _cached(VENV_PREFIX, venv_key, lambda target: _build_venv(repo, files, target))
    proxy_dir = _cached(PROXY_PREFIX, proxy_key, _install_proxy)
    return HubEnvironment(venv=venv, proxy_dir=proxy_dir)


def project_files(repo: Path) -> list[str]:
    """The paths (relative to ``repo``, sorted) of the files the project's wheel is built from."""
    names = [name for name in _PROJECT_FILES if (repo / name).is_file()]
    with_panel = (repo / _PREBUILT_PANEL).is_file()
    for tree in _PROJECT_TREES:
        for path in (repo / tree).rglob("*"):
            relative = path.relative_to(repo).as_posix()
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if relative.startswith("jupyter_sched/labextension/") and not with_panel:
                continue
            names.append(relative)
    return sorted(names)


def _digest(parts: list[str], files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _command_output(command: list[str]) -> str:
    return subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cached(prefix: str, key: str, build: Callable[[Path], None]) -> Path:
    """Return ``CACHE_ROOT/<prefix>-<key>``, built by ``build(target)`` unless complete."""
    target = CACHE_ROOT / f"{prefix}-{key}"
    stamp = target / _COMPLETE
    if not stamp.exists():
        with _locked(CACHE_ROOT / f"{prefix}.lock"):
            if not stamp.exists():
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(mode=0o755)
                build(target)
                _make_world_readable(target)
                stamp.write_text(f"built {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                _remove_stale(prefix, keep=target)
    stamp.touch()  # marks it used, for _remove_stale
    _check_world_traversable(target)
    return target


def _remove_stale(prefix: str, keep: Path) -> None:
    """Remove incomplete builds (only ever left by a killed build: builds hold the lock) and
    complete ones unused for ``STALE_AFTER_SECONDS``."""
    for path in CACHE_ROOT.glob(f"{prefix}-*"):
        if path == keep or not path.is_dir():
            continue
        stamp = path / _COMPLETE
        if not stamp.exists() or time.time() - stamp.stat().st_mtime > STALE_AFTER_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def _build_venv(repo: Path, files: list[str], target: Path) -> None:
    """Create the virtualenv in ``target`` and install the hub, JupyterLab and the project.

    The project is installed from a wheel of a snapshot of ``files`` (in a fresh folder, so no
    cached build of an older source can be used); the wheel's build hook is told not to run
    npm: the Lab panel comes prebuilt or not at all.
    """
    uv_bin = _uv()
    uv_env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "SKIP_JUPYTER_BUILDER": "1"}
    _run([uv_bin, "venv", "--quiet", "--python", BASE_PYTHON, str(target)], env=uv_env)
    with tempfile.TemporaryDirectory(prefix="jupyter-sched-snapshot-") as scratch:
        snapshot = Path(scratch) / "jupyter-sched"
        for name in files:
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, snapshot / name)
        install = [uv_bin, "pip", "install", "--quiet", "--python", str(target / "bin/python")]
        _run(
            [*install, "--compile-bytecode", *HUB_REQUIREMENTS, f"{snapshot}[postgres]"],
            env=uv_env,
        )


def _uv() -> str:
    """The ``uv`` executable of the test dependencies (it installs in seconds what pip
    takes minutes for)."""
    try:
        import uv
    except ImportError:
        raise RuntimeError(
            "the hub tests build their environment with uv, a test dependency: "
            "run `make install` (or pip install -e '.[test]')"
        ) from None
    return str(uv.find_uv_bin())


def _install_proxy(target: Path) -> None:
    _run(
        [
            "npm",
            "install",
            "--prefix",
            str(target),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            PROXY_PACKAGE,
        ]
    )


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=BUILD_TIMEOUT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with code {result.returncode}:\n"
            f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
        )


def _make_world_readable(root: Path) -> None:
    """Let every user read every file and enter every folder under ``root`` (and run what
    its owner may run), whatever the umask of the build or of the caches files came from."""
    for folder, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = mode | stat.S_IRGRP | stat.S_IROTH
            if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
                wanted |= stat.S_IXGRP | stat.S_IXOTH
            if wanted != mode:
                os.chmod(path, stat.S_IMODE(wanted))
    os.chmod(root, 0o755)


def _check_world_traversable(path: Path) -> None:
    """Raise unless every folder from ``/`` down to ``path`` can be entered by any user."""
    for folder in [path, *path.parents]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            raise RuntimeError(f"{folder} cannot be entered by other users (mode lacks o+x)")
