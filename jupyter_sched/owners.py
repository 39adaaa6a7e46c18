"""Running a run as its owner's Unix user, and keeping the worker's secrets out of reach.

On a shared hub the workers run as root and start each run's kernel as the run's owner:
that user's uid, gid and groups, a clean environment like the one a hub spawner gives a
user's server (``USER``, ``LOGNAME``, ``HOME``, ``SHELL``, ``PATH``, the locale), the
working directory in the user's files. A kernel started so cannot read the worker's memory,
environment or files (another uid), and the run's folder is the owner's alone (mode 0700).

Where everything runs as one Unix user (the embedded default), the worker marks itself
non-dumpable (:func:`hide_process`): the kernels it starts, of the same uid, can then read
neither its ``/proc/<pid>/environ`` nor its memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import NoSuchOwner, NotFound

__all__ = ["OwnerAccount", "hide_process", "owner_account", "owner_copy", "read_as"]

_PR_SET_DUMPABLE = 4
#: Variables of the worker's environment a kernel run as its owner still gets (the locale).
_LOCALE_KEYS = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: Where a run-as-owner kernel finds programs: the worker's Python first (the kernels'
#: environment), then the system's.
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class OwnerAccount:
    """The Unix account a run executes as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str

    def environ(self) -> dict[str, str]:
        """The kernel's whole environment: the user's, none of the worker's but the locale."""
        env = {
            "USER": self.name,
            "LOGNAME": self.name,
            "HOME": self.home,
            "SHELL": self.shell or "/bin/sh",
            "PATH": f"{os.path.dirname(sys.executable)}:{_SYSTEM_PATH}",
        }
        env.update({k: os.environ[k] for k in _LOCALE_KEYS if k in os.environ})
        env.setdefault("LANG", "C.UTF-8")
        return env

    def popen_kwargs(self) -> dict[str, object]:
        """What ``subprocess.Popen`` needs to start a process as this user."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def own(self, path: Path, mode: int) -> None:
        """Give ``path`` to this user with ``mode``."""
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)


def owner_account(name: str) -> OwnerAccount:
    """The account of owner ``name``; :class:`NoSuchOwner` when the machine has none."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise NoSuchOwner(
            f"the run's owner {name!r} has no Unix account on this worker's machine "
            f"({os.uname().nodename}); runs execute as their owner"
        ) from None
    # Its primary group too, as initgroups(3) sets them for a login and as the hub's
    # spawner does for the user's server: a run sees the groups its owner's Lab kernel sees.
    groups = tuple(sorted(set(os.getgrouplist(name, entry.pw_gid))))
    return OwnerAccount(
        name=name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        groups=groups,
        home=entry.pw_dir,
        shell=entry.pw_shell,
    )


def read_as(account: OwnerAccount, path: Path) -> bytes:
    """The bytes of ``path`` as ``account`` may read them (a root worker reads a user's
    notebook with that user's rights, never its own)."""
    result = subprocess.run(
        ["/bin/cat", "--", str(path)],
        env={"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8"},
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=READ_TIMEOUT,
        check=False,
        user=account.uid,
        group=account.gid,
        extra_groups=list(account.groups),
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise PermissionError(f"{account.name} cannot read {path}: {message}")
    return result.stdout


@contextlib.contextmanager
def owner_copy(settings: Settings, owner: str, path: Path) -> Iterator[Path]:
    """``path`` itself, or where runs execute as their owner, a private copy of it read with
    ``owner``'s rights (:class:`NotFound` when they cannot read it)."""
    if not settings.run_as_owner or not owner:
        yield path
        return
    try:
        content = read_as(owner_account(owner), path)
    except (OSError, subprocess.SubprocessError):
        raise NotFound(
            f"notebook: {path.name} cannot be read by {owner}", field="notebook"
        ) from None
    with tempfile.TemporaryDirectory(prefix="sched-check-") as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(content)
        yield copy


def hide_process() -> None:
    """Make this process non-dumpable: processes of the same uid (its kernels) can no longer
    read its ``/proc/<pid>/environ``, ``mem`` or ``cmdline`` of secrets, nor ptrace it.
    Children get their own flag back when they exec."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
