"""Unix accounts and the state folder of one hub test session, and the removal of what a
killed session left behind.

A session has an id, a folder ``REGISTRY/<id>`` (root only) holding ``owner.json`` (the pid
and start time of the pytest process) and every file of the session's hub, two Unix groups
(``jsched-users-<id>``: who may log in; ``jsched-admins-<id>``: who administers the hub), and
Unix accounts with a random password whose comment field (GECOS) reads ``"<MARKER> <id>"``:

- ``alice`` and ``bob``, members of the users group;
- ``carol``, member of the admins group;
- ``eve``, in neither: she has an account on the machine but may not use the hub.

Each is named after its role when that name is free, else ``<role>-<id>``.

Before a session opens, :func:`remove_stale_sessions` ends the processes and removes the
accounts, groups and folders of every session whose pytest process is gone. Only accounts
carrying the marker and groups named as above are ever removed, so a real ``alice`` is never
touched.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["ROLES", "HubTestSession", "close_session", "open_session", "remove_stale_sessions"]

REGISTRY = Path(tempfile.gettempdir()) / "jupyter-sched-hub-sessions"
MARKER = "jupyter-sched hub test"
USERS_GROUP_PREFIX = "jsched-users-"
ADMINS_GROUP_PREFIX = "jsched-admins-"
#: Each person of the tests and the session groups they belong to.
ROLES = {
    "alice": (USERS_GROUP_PREFIX,),
    "bob": (USERS_GROUP_PREFIX,),
    "carol": (ADMINS_GROUP_PREFIX,),
    "eve": (),
}
_OWNER_FILE = "owner.json"
_NEW_PREFIX = ".new-"
_ABANDONED_NEW_SECONDS = 3600
_USERADD_NAME_IN_USE = 9
_USERDEL_NO_SUCH_USER = 6
_KILL_WAIT_SECONDS = 10.0
_SYSTEM_BIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


@dataclass(frozen=True)
class HubTestSession:
    """One test session: its id, state folder, Unix accounts and their passwords (by role),
    and its groups."""

    id: str
    directory: Path
    accounts: dict[str, str]
    passwords: dict[str, str]

    @property
    def users_group(self) -> str:
        """The Unix group whose members may log in to the hub."""
        return f"{USERS_GROUP_PREFIX}{self.id}"

    @property
    def admins_group(self) -> str:
        """The Unix group whose members administer the hub."""
        return f"{ADMINS_GROUP_PREFIX}{self.id}"

    def account(self, role: str) -> pwd.struct_passwd:
        """The passwd entry of the account playing ``role`` (``"alice"``, ...)."""
        return pwd.getpwnam(self.accounts[role])


def open_session() -> HubTestSession:
    """Remove stale sessions, then create this session's folder, groups and accounts."""
    remove_stale_sessions()
    REGISTRY.mkdir(mode=0o700, exist_ok=True)
    session_id = secrets.token_hex(3)
    # Written under a hidden name, then renamed: another session's clean-up never sees a
    # session folder without its owner.
    pending = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=REGISTRY))
    me = psutil.Process()
    (pending / _OWNER_FILE).write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
    directory = REGISTRY / session_id
    pending.rename(directory)
    try:
        for prefix in (USERS_GROUP_PREFIX, ADMINS_GROUP_PREFIX):
            _run(["groupadd", f"{prefix}{session_id}"])
        accounts = {
            role: _add_account(role, session_id, [f"{p}{session_id}" for p in prefixes])
            for role, prefixes in ROLES.items()
        }
        passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
        lines = "".join(f"{accounts[role]}:{passwords[role]}\n" for role in ROLES)
        _run(["chpasswd"], stdin=lines)
    except BaseException:
        _remove_session(session_id)
        raise
    return HubTestSession(session_id, directory, accounts, passwords)


def close_session(session: HubTestSession) -> None:
    """End the processes of the session's accounts and remove them, its groups and folder."""
    _remove_session(session.id)


def remove_stale_sessions() -> None:
    """Remove what sessions whose pytest process is gone left: processes, accounts, groups,
    folders. Sessions still running are left alone."""
    live: set[str] = set()
    stale: set[str] = set()
    if REGISTRY.is_dir():
        for folder in REGISTRY.iterdir():
            if not folder.name.startswith(_NEW_PREFIX):
                (live if _owner_alive(folder) else stale).add(folder.name)
            elif time.time() - folder.stat().st_mtime > _ABANDONED_NEW_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
    stale |= {_session_of_account(user) or "" for user in pwd.getpwall()}
    stale |= {_session_of_group(group) or "" for group in grp.getgrall()}
    for session_id in sorted(stale - live - {""}):
        _remove_session(session_id)


def _remove_session(session_id: str) -> None:
    directory = REGISTRY / session_id
    # The hub and its proxy run with the session folder as their working directory.
    _kill([p for p in psutil.process_iter() if _cwd(p) == directory])
    for user in pwd.getpwall():
        if _session_of_account(user) == session_id:
            _kill([p for p in psutil.process_iter() if _real_uid(p) == user.pw_uid])
            _run(["userdel", "--remove", user.pw_name], ok_codes=(0, _USERDEL_NO_SUCH_USER))
    for group in grp.getgrall():
        if _session_of_group(group) == session_id:
            _run(["groupdel", group.gr_name])
    shutil.rmtree(directory, ignore_errors=True)


def _add_account(role: str, session_id: str, groups: list[str]) -> str:
    """Create the account for ``role``: its plain name if free, else ``<role>-<id>``."""
    for name in (role, f"{role}-{session_id}"):
        command = ["useradd", "--create-home", "--shell", "/bin/bash"]
        command += ["--comment", f"{MARKER} {session_id}", "-K", "HOME_MODE=0700"]
        if groups:
            command += ["--groups", ",".join(groups)]
        code = _run([*command, name], ok_codes=(0, _USERADD_NAME_IN_USE))
        if code == 0:
            return name
    raise RuntimeError(f"could not create an account for {role}")


def _session_of_account(user: pwd.struct_passwd) -> str | None:
    """The session id in a test account's comment, or None for any other account."""
    if not user.pw_gecos.startswith(MARKER + " "):
        return None
    return user.pw_gecos[len(MARKER) + 1 :].strip() or None


def _session_of_group(group: grp.struct_group) -> str | None:
    """The session id in a test group's name, or None for any other group."""
    for prefix in (USERS_GROUP_PREFIX, ADMINS_GROUP_PREFIX):
        if group.gr_name.startswith(prefix):
            return group.gr_name[len(prefix) :] or None
    return None


def _owner_alive(folder: Path) -> bool:
    try:
        owner = json.loads((folder / _OWNER_FILE).read_text())
        process = psutil.Process(int(owner["pid"]))
        return bool(abs(process.create_time() - float(owner["started"])) < 0.01)
    except (OSError, ValueError, KeyError, psutil.Error):
        return False


def _cwd(process: psutil.Process) -> Path | None:
    try:
        return Path(process.cwd())
    except psutil.Error:
        return None


def _real_uid(process: psutil.Process) -> int | None:
    try:
        return int(process.uids().real)
    except psutil.Error:
        return None


def _kill(processes: list[psutil.Process]) -> None:
    """SIGKILL these processes (psutil checks each is still the one it listed) and wait."""
    targets = [p for p in processes if p.pid != os.getpid()]
    for process in targets:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(targets, timeout=_KILL_WAIT_SECONDS)


def _run(command: list[str], ok_codes: tuple[int, ...] = (0,), stdin: str | None = None) -> int:
    """Run an account tool (``useradd``, ...), found also where PATH lacks the sbin folders."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SYSTEM_BIN])
    executable = shutil.which(command[0], path=search) or command[0]
    result = subprocess.run(
        [executable, *command[1:]],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode not in ok_codes:
        raise RuntimeError(
            f"{' '.join(command)} failed with code {result.returncode}: "
            f"{result.stdout}{result.stderr}"
        )
    return result.returncode
