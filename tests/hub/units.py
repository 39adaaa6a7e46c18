"""The systemd units of ``deploy/`` as the tests use them: read as systemd reads them, and
turned into the command, environment, working directory and umask systemd would start.

The hub tests start the workers from ``deploy/jupyter-sched-worker@.service`` this way,
changing only the paths of an installation (``/opt/jupyterhub``, ``/etc/jupyter-sched``,
``/var/lib/jupyter-sched``) to the test's own, so the units an admin copies are the ones
tested.
"""

from __future__ import annotations

import pwd
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEPLOY",
    "UnitLaunch",
    "environment_file",
    "exec_start",
    "localize",
    "read_unit",
    "unit_launch",
]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: The ``PATH`` systemd 252 gives services (no ``Environment=PATH=`` in the units).
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Unit = dict[str, dict[str, list[str]]]


def read_unit(path: Path) -> Unit:
    """``{section: {key: [values, in order]}}`` of a unit file (keys such as
    ``EnvironmentFile`` may repeat; comments and blank lines are skipped)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if section is None or not sep or line.endswith("\\"):
            raise ValueError(f"{path}:{number}: not a unit line this reader knows: {raw!r}")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def environment_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of a systemd ``EnvironmentFile`` (comments skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")) and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"')
    return values


def localize(text: str, paths: dict[str, str], instance: str = "1") -> str:
    """``text`` of a unit with each installation path of ``paths`` (a prefix) replaced by
    the given one, and the instance name for ``%i``."""
    for installed, here in paths.items():
        text = text.replace(installed, here)
    return text.replace("%i", instance)


def exec_start(unit: Unit, paths: dict[str, str], instance: str = "1") -> list[str]:
    """The unit's ``ExecStart`` command, its paths localized (:func:`localize`)."""
    (command,) = unit["Service"]["ExecStart"]
    return [localize(word, paths, instance) for word in shlex.split(command)]


@dataclass(frozen=True)
class UnitLaunch:
    """What systemd starts for a unit's ``[Service]``."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    umask: int
    user: str


def unit_launch(unit: Unit, paths: dict[str, str], instance: str = "1") -> UnitLaunch:
    """The process systemd would start for ``unit`` (instance ``instance`` of a template),
    with each installation path of ``paths`` (a prefix) replaced by the given one.

    The environment is systemd's: the ``User=``'s ``HOME``, ``USER``, ``LOGNAME`` and
    ``SHELL``, systemd's ``PATH`` and locale, then ``Environment=``, then each
    ``EnvironmentFile=`` in order (the files win, as in systemd).
    """
    service = unit["Service"]

    def local(text: str) -> str:
        return localize(text, paths, instance)

    (user,) = service["User"]
    account = pwd.getpwnam(user)
    env = {
        "PATH": SYSTEMD_PATH,
        "LANG": "C.UTF-8",
        "HOME": account.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": account.pw_shell,
    }
    for assignments in service.get("Environment", []):
        for assignment in shlex.split(assignments):
            key, _, value = assignment.partition("=")
            env[key] = value
    for name in service.get("EnvironmentFile", []):
        env.update(environment_file(Path(local(name))))
    (cwd,) = service["WorkingDirectory"]
    (umask,) = service.get("UMask", ["0022"])
    return UnitLaunch(
        argv=exec_start(unit, paths, instance),
        env=env,
        cwd=Path(local(cwd)),
        umask=int(umask, 8),
        user=user,
    )
