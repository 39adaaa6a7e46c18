"""Throwaway Redis and PostgreSQL servers for tests.

Each helper starts a real server process bound to ``127.0.0.1`` on a free port, in its own
temporary directory, waits until it answers, yields a small handle describing it and, on exit,
stops the process and removes the directory. The handles can also simulate a crash
(``kill()``) and bring the server back on the same port (``start()``).

The servers come from the Debian packages ``redis-server`` and ``postgresql``; ``make test``
installs them. Linux is assumed (``/proc`` is used to find PostgreSQL's child processes).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "child_pids",
    "find_free_port",
    "pid_alive",
    "postgres_server",
    "redis_server",
]

HOST = "127.0.0.1"
REDIS_FALLBACK_BINARY = "/usr/bin/redis-server"
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_OS_USER = "postgres"
POSTGRES_DB_USER = "postgres"
POSTGRES_DEFAULT_DB = "postgres"

REDIS_READY_TIMEOUT = 10.0
REDIS_STOP_TIMEOUT = 5.0
POSTGRES_READY_TIMEOUT = 20.0
POSTGRES_STOP_TIMEOUT = 10.0
INITDB_TIMEOUT = 60.0
SHM_DIR = "/dev/shm"
SHM_MIN_FREE_BYTES = 1 << 30

_POLL_INTERVAL = 0.02
_PORT_ATTEMPTS = 3
_LOG_TAIL_CHARS = 4000
_PR_SET_PDEATHSIG = 1
_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_INSTALL_HINT = "run `make test`, which installs the Debian packages redis-server and postgresql"


# --------------------------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------------------------


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks the port (bind to port 0) and it is released at once, so another process
    could take it before the caller does; the server helpers retry on a new port if that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists and is not a zombie (exited but not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (or it just vanished): trust kill(0)
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def child_pids(pid: int) -> list[int]:
    """Return the ids of the live direct children of process ``pid`` (empty without /proc)."""
    children: list[int] = []
    for stat_path in glob.glob("/proc/[0-9]*/stat"):
        try:
            stat = Path(stat_path).read_text()
        except OSError:
            continue  # the process exited meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] not in ("Z", "X") and int(fields[1]) == pid:
            children.append(int(stat.split(" ", 1)[0]))
    return sorted(children)


def _die_with_parent_hook() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that has the kernel SIGKILL the child when the test process dies.

    It runs in the forked child just before exec, after any user switch (which would reset
    it), so a test run that is itself SIGKILLed does not leave servers behind. ``prctl`` is
    looked up here, in the parent, so the child only makes one foreign call. Linux only.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    sigkill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)

    return hook


def _scratch_root() -> str | None:
    """Pick the parent directory for a server's temporary directory.

    An explicit ``TMPDIR`` wins. Otherwise ``/dev/shm`` (tmpfs) is used when it has at least
    ``SHM_MIN_FREE_BYTES`` free, as PostgreSQL on tmpfs runs ``initdb`` and ``CREATE DATABASE``
    several times faster than on a journaling disk; small ``/dev/shm`` mounts (Docker's
    default is 64 MiB) fall back to the default temporary directory.
    """
    if os.environ.get("TMPDIR"):
        return None
    try:
        stats = os.statvfs(SHM_DIR)
    except OSError:
        return None
    if not os.access(SHM_DIR, os.W_OK | os.X_OK):
        return None
    return SHM_DIR if stats.f_bavail * stats.f_frsize >= SHM_MIN_FREE_BYTES else None


def _read_log(path: Path) -> str:
    """Return the tail of a server log file, or a placeholder if it is empty or missing."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "<no log file>"
    return text[-_LOG_TAIL_CHARS:] if text else "<empty log>"


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait until none of ``pids`` is alive (zombies count as gone), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL)


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc``, its process group and its direct children, then reap ``proc``."""
    children = child_pids(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    for pid in children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    _wait_gone(children, timeout=5.0)


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Send ``sig`` to ``proc`` and wait for it; SIGKILL everything if it takes too long."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
    proc.wait()


def _wait_ready(
    proc: subprocess.Popen[bytes],
    probe: Callable[[], None],
    errors: type[Exception] | tuple[type[Exception], ...],
    timeout: float,
    log_path: Path,
    *,
    what: str,
    ready: str,
) -> None:
    """Call ``probe`` until it succeeds, ``proc`` exits or ``timeout`` seconds pass.

    ``probe`` raising one of ``errors`` means "not ready yet". Raises :class:`ServerStartError`
    with the tail of ``log_path`` if the process exits or the time runs out.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        code = proc.poll()
        if code is not None:
            raise ServerStartError(
                f"{what} exited with code {code} during startup", _read_log(log_path)
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{what} did not {ready} within {timeout:g} s (last error: {last_error!r})",
                _read_log(log_path),
            )
        try:
            probe()
        except errors as exc:
            last_error = exc
        else:
            return
        time.sleep(_POLL_INTERVAL)


class ServerStartError(RuntimeError):
    """A server did not become ready; the message ends with the tail of its log."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(f"{message}\n--- server log ---\n{log}")
        self.log = log

    @property
    def port_taken(self) -> bool:
        """Whether the failure was the port being in use (worth retrying on another port)."""
        return "address already in use" in self.log.lower()


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def _redis_binary() -> str:
    """Locate ``redis-server`` or raise a RuntimeError explaining how to install it."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.access(REDIS_FALLBACK_BINARY, os.X_OK):
        return REDIS_FALLBACK_BINARY
    raise RuntimeError(f"redis-server binary not found; {_INSTALL_HINT}.")


@dataclass
class RedisServer:
    """A throwaway Redis server on 127.0.0.1, without persistence (data is lost on kill).

    With a ``password`` the server refuses every command of a client that has not given it
    (``requirepass``), and ``url`` carries it.
    """

    url: str
    port: int
    pid: int
    directory: Path = field(repr=False)
    binary: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        """The file receiving the server's stdout and stderr."""
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server on ``self.port`` and wait until it answers PING.

        Serves for the first start and to restart after :meth:`kill`; the data set starts
        empty. Raises :class:`ServerStartError` (a RuntimeError carrying the server's output)
        if it does not answer within ``REDIS_READY_TIMEOUT`` seconds.
        """
        if self.running:
            raise RuntimeError(f"redis-server is already running (pid {self.pid})")
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.directory),
        ]
        if self.password is not None:
            command += ["--requirepass", self.password]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        self.pid = self._proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the server, simulating a crash (all data is lost), and reap it."""
        if self._proc is not None:
            _kill_tree(self._proc)
            self._proc = None

    def stop(self) -> None:
        """Stop the server gracefully: SIGTERM, then SIGKILL after ``REDIS_STOP_TIMEOUT`` s."""
        if self._proc is not None:
            _stop(self._proc, signal.SIGTERM, REDIS_STOP_TIMEOUT)
            self._proc = None

    def flush(self) -> None:
        """Delete every key of every database (FLUSHALL)."""
        with self._client() as client:
            client.flushall()

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_connect_timeout=1,
            socket_timeout=5,
        )

    def _ping(self) -> None:
        # Short timeouts and no retries: a port that was taken by another process may accept
        # the connection and never answer, and the loop must notice that the server died.
        probe = redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        with probe:
            probe.ping()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        _wait_ready(
            self._proc,
            self._ping,
            redis.RedisError,
            REDIS_READY_TIMEOUT,
            self.log_path,
            what=f"redis-server on port {self.port}",
            ready="answer PING",
        )


@contextmanager
def redis_server(password: str | None = None) -> Iterator[RedisServer]:
    """Run a throwaway ``redis-server`` on a free loopback port for the ``with`` block.

    Yields a :class:`RedisServer` that is answering PING; with ``password``, only to clients
    that give it. On exit the server is stopped (if it is still running) and its temporary
    directory removed.
    """
    binary = _redis_binary()
    directory = Path(tempfile.mkdtemp(prefix="test-redis-", dir=_scratch_root()))
    server = RedisServer(
        url="", port=0, pid=0, directory=directory, binary=binary, password=password
    )
    credentials = "" if password is None else f":{urllib.parse.quote(password, safe='')}@"
    try:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            server.port = find_free_port()
            server.url = f"redis://{credentials}{HOST}:{server.port}/0"
            try:
                server.start()
            except ServerStartError as exc:
                if not exc.port_taken or attempt == _PORT_ATTEMPTS:
                    raise
            else:
                break
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _postgres_bindir() -> Path:
    """Locate the PostgreSQL server binaries or raise a RuntimeError explaining how to install.

    Prefers ``pg_config --bindir`` when it holds ``initdb`` (Debian's pg_config points at
    /usr/bin, which has only client wrappers), else the highest /usr/lib/postgresql/*/bin.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and (bindir / "initdb").is_file():
            return bindir

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for candidate in sorted(glob.glob(POSTGRES_BIN_GLOB), key=version, reverse=True):
        bindir = Path(candidate)
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise RuntimeError(f"PostgreSQL server binaries (initdb, postgres) not found; {_INSTALL_HINT}.")


def _postgres_os_user() -> pwd.struct_passwd | None:
    """Return the account to run PostgreSQL as when we are root (it refuses root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root but there is no {POSTGRES_OS_USER!r} OS user to run PostgreSQL "
            f"as; {_INSTALL_HINT}."
        ) from None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth and durability turned off.

    ``url`` is an SQLAlchemy URL (psycopg 3 driver) to the ``postgres`` database as the
    ``postgres`` superuser; use :meth:`create_database` to get an empty database per test.
    With a ``password``, TCP connections must give it (SCRAM) and the URLs carry it; the
    server's Unix socket, in a folder only its OS user can enter, stays trusted.
    """

    url: str
    port: int
    pid: int
    directory: Path = field(repr=False)
    bindir: Path = field(repr=False)
    os_user: pwd.struct_passwd | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        """The file receiving the server's stdout and stderr."""
        return self.directory / "postgres.log"

    @property
    def running(self) -> bool:
        """Whether the postmaster process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def database_url(self, name: str) -> str:
        """Return the SQLAlchemy URL of database ``name`` on this server (not created)."""
        user = POSTGRES_DB_USER
        if self.password is not None:
            user += f":{urllib.parse.quote(self.password, safe='')}"
        return f"postgresql+psycopg://{user}@{HOST}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its SQLAlchemy URL.

        ``name`` must be a plain identifier (letters, digits, underscores; at most 63 chars).
        """
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}: use letters, digits and _")
        with self._connect(POSTGRES_DEFAULT_DB, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def init(self) -> None:
        """Create the cluster's data directory with ``initdb`` (trust auth, UTF8, C locale).

        With a password, TCP connections use SCRAM with that password instead of trust.
        """
        auth = ["--auth=trust"]
        if self.password is not None:
            password_file = self.directory / "password"
            password_file.write_text(self.password)
            if self.os_user is not None:
                os.chown(password_file, self.os_user.pw_uid, self.os_user.pw_gid)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}"]
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                POSTGRES_DB_USER,
                *auth,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=INITDB_TIMEOUT,
            **self._user_kwargs(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed with code {result.returncode}:\n{result.stdout}{result.stderr}"
            )

    def start(self) -> None:
        """Start the postmaster on ``self.port`` and wait until it accepts connections.

        Serves for the first start and to restart after :meth:`kill` (PostgreSQL then runs
        crash recovery; committed data survives). Raises :class:`ServerStartError` (a
        RuntimeError carrying the server log) if it is not ready within
        ``POSTGRES_READY_TIMEOUT`` seconds.
        """
        if self.running:
            raise RuntimeError(f"postgres is already running (pid {self.pid})")
        command = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.directory),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            # Keep dynamic shared memory in files under the data dir instead of POSIX segments
            # in /dev/shm, so a kill() that is never followed by start() leaks nothing.
            "-c",
            "dynamic_shared_memory_type=mmap",
        ]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
                **self._user_kwargs(),
            )
        self.pid = self._proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children, simulating a crash, and reap them.

        The server runs with ``synchronous_commit=off``: transactions committed in the last
        few hundred milliseconds may be lost (their WAL was not written yet). A test that
        needs a commit to survive should run ``SET LOCAL synchronous_commit = on`` in it.
        """
        if self._proc is not None:
            _kill_tree(self._proc)
            self._proc = None

    def stop(self) -> None:
        """Stop the server with a fast shutdown (SIGINT); SIGKILL it if that takes too long."""
        if self._proc is not None:
            _stop(self._proc, signal.SIGINT, POSTGRES_STOP_TIMEOUT)
            self._proc = None

    def _user_kwargs(self) -> dict[str, Any]:
        if self.os_user is None:
            return {}
        return {
            "user": self.os_user.pw_uid,
            "group": self.os_user.pw_gid,
            "extra_groups": [],
            "env": {**os.environ, "HOME": self.os_user.pw_dir, "USER": self.os_user.pw_name},
        }

    def _connect(
        self, dbname: str, *, autocommit: bool = False, host: str = HOST
    ) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=host,
            port=self.port,
            user=POSTGRES_DB_USER,
            password=self.password,
            dbname=dbname,
            connect_timeout=2,
            autocommit=autocommit,
        )

    def _select_one(self) -> None:
        # Through this server's own Unix socket: if another process took the TCP port, a TCP
        # probe could hang on that process instead of seeing this server exit.
        with self._connect(POSTGRES_DEFAULT_DB, host=str(self.directory)) as conn:
            conn.execute("SELECT 1")

    def _wait_ready(self) -> None:
        assert self._proc is not None
        _wait_ready(
            self._proc,
            self._select_one,
            psycopg.Error,
            POSTGRES_READY_TIMEOUT,
            self.log_path,
            what=f"postgres on port {self.port}",
            ready="accept connections",
        )


@contextmanager
def postgres_server(password: str | None = None) -> Iterator[PostgresServer]:
    """Run a throwaway PostgreSQL cluster on a free loopback port for the ``with`` block.

    Runs ``initdb`` in a fresh temporary directory, starts ``postgres`` (as the ``postgres``
    OS user when the tests run as root) and yields a :class:`PostgresServer` that accepts
    connections (over TCP, with ``password`` only, when one is given). On exit the server
    is stopped and the directory removed.
    """
    bindir = _postgres_bindir()
    os_user = _postgres_os_user()
    directory = Path(tempfile.mkdtemp(prefix="test-postgres-", dir=_scratch_root()))
    server = PostgresServer(
        url="",
        port=0,
        pid=0,
        directory=directory,
        bindir=bindir,
        os_user=os_user,
        password=password,
    )
    try:
        if os_user is not None:
            os.chown(directory, os_user.pw_uid, os_user.pw_gid)
        server.init()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            server.port = find_free_port()
            server.url = server.database_url(POSTGRES_DEFAULT_DB)
            try:
                server.start()
            except ServerStartError as exc:
                if not exc.port_taken or attempt == _PORT_ATTEMPTS:
                    raise
            else:
                break
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory)


#: Seconds a ``jupyter server`` process may take to answer before it is called hung.
SERVER_START_DEADLINE = 600.0


def server_status(port: int, path: str, token: str) -> tuple[int | None, bytes]:
    """The status and body of ``GET /<path>`` on a local Jupyter server (``None`` when
    it does not answer)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"/{path}", headers={"Authorization": f"token {token}"})
        answer = connection.getresponse()
        return answer.status, answer.read()
    except OSError:
        return None, b""
    finally:
        connection.close()


@contextmanager
def jupyter_server(
    folder: Path,
    *,
    root_dir: Path,
    token: str,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    only_sched: bool = False,
) -> Iterator[tuple[int, Path]]:
    """A ``jupyter server`` process with the scheduler's extension (the only one with
    ``only_sched``) and ``args``, serving ``root_dir`` with ``token`` in environment
    ``env``, logging in ``folder``; yields its port and log file."""
    port, log = find_free_port(), folder / "server.log"
    others = ("jupyterlab", "jupyter_lsp", "notebook_shim", "jupyter_server_terminals")
    extensions = {"jupyter_sched": True, **dict.fromkeys(others if only_sched else (), False)}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter_server", f"--ServerApp.port={port}",
                "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                "--ServerApp.open_browser=False",
                f"--ServerApp.root_dir={root_dir}", "--ServerApp.allow_root=True",
                f"--ServerApp.jpserver_extensions={extensions!r}", *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env=env,
        )  # fmt: skip
    try:
        # A hang guard, not a speed figure (start-up time is in bench/idle_footprint.py):
        # it starts in seconds alone, and far slower beside CPU hogs.
        deadline = time.monotonic() + SERVER_START_DEADLINE
        while server_status(port, "api/status", token)[0] != 200:
            assert process.poll() is None, _read_log(log)
            assert time.monotonic() < deadline, _read_log(log)
            time.sleep(0.2)
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            _kill_tree(process)
