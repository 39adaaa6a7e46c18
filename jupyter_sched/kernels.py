"""Kernels for runs: started without secrets, handed over ready, torn down off the run's path.

A run pays only for its cells when its kernel was prepared beforehand: the process started,
a client connected and the kernel's start-up messages drained. :class:`KernelSupply` keeps
one prepared kernel per worker thread while a run is expected (a run in the last minutes, a
job due soon, a user in the scheduling dialog) and none otherwise, so an idle worker holds no
kernel. Each kernel serves exactly one run: every run starts with fresh interpreter state.

When a run ends its kernel's process group is killed at once (nothing a cell started
outlives its run), and the rest of the teardown (waiting for the processes, removing the
connection files) is left to a :class:`Reaper` thread, so the outcome is recorded without
waiting for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_core.utils import run_sync

from .config import kernel_environ
from .notebooks import kernel_language
from .owners import OwnerAccount

log = logging.getLogger(__name__)

#: Seconds a kernel gets to start and answer.
KERNEL_START_TIMEOUT = 60.0
#: How long a kernel is kept prepared after a run or a hint, when nothing else comes.
EXPECT_SECONDS = 300.0


def _ipc_prefix() -> str:
    # Unix sockets rather than TCP ports: no other user of a shared machine can reach the
    # kernel, and socket paths must stay short (about 100 bytes on Linux).
    base = jupyter_runtime_dir()
    if len(base) > 80:
        base = tempfile.gettempdir()
    os.makedirs(base, mode=0o700, exist_ok=True)
    return os.path.join(base, f"sched-{uuid.uuid4().hex[:12]}")


#: Guards of live kernels, by kernel manager.
_guards: dict[int, subprocess.Popen[bytes]] = {}
_guards_lock = threading.Lock()

# Waits for its stdin to close, then kills the process group given as $1. The worker holds
# the only write end of that pipe, so the OS closes it when the worker dies in any way,
# SIGKILL included: the kernel and whatever its cells started die with it.
_GUARD_SCRIPT = 'cat >/dev/null; kill -9 -"$1" 2>/dev/null; exit 0'


def _guard(km: AsyncKernelManager) -> None:
    pgid = kernel_process_group(km)
    if pgid is None or pgid <= 1:
        return
    guard = subprocess.Popen(
        ["/bin/sh", "-c", _GUARD_SCRIPT, "sched-kernel-guard", str(pgid)],
        # Nothing of the worker's environment: the guard is dumpable, so a kernel of the
        # same uid could read its /proc/<pid>/environ.
        env={"PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the worker's group must not reach it
    )
    with _guards_lock:
        _guards[id(km)] = guard


def _release_guard(km: AsyncKernelManager) -> None:
    with _guards_lock:
        guard = _guards.pop(id(km), None)
    if guard is not None and guard.stdin is not None:
        guard.stdin.close()
        try:
            guard.wait(5)
        except subprocess.TimeoutExpired:
            guard.kill()


def start_kernel(name: str, cwd: Path, account: OwnerAccount | None = None) -> AsyncKernelManager:
    """Launch kernel ``name`` in ``cwd`` in its own process session, without secrets.

    With ``account`` the kernel runs as that Unix user (uid, gid, groups) with the user's
    own environment (:meth:`OwnerAccount.environ`); its connection file and sockets live in
    a folder of that user's (mode 0700). A guard process kills the kernel's process group
    if this process dies first.
    """
    if account is None:
        km = AsyncKernelManager(kernel_name=name, transport="ipc", ip=_ipc_prefix())
        run_sync(km.start_kernel)(cwd=str(cwd), env=kernel_environ())
    else:
        folder = Path(tempfile.mkdtemp(prefix="sched-kernel-"))
        account.own(folder, 0o700)
        km = AsyncKernelManager(
            kernel_name=name,
            transport="ipc",
            ip=str(folder / "k"),
            connection_file=str(folder / "kernel.json"),
        )
        # Written here, given to the user, then used as is by the launch.
        km.write_connection_file()
        account.own(folder / "kernel.json", 0o600)
        _kernel_dirs[id(km)] = folder
        try:
            run_sync(km.start_kernel)(cwd=str(cwd), env=account.environ(), **account.popen_kwargs())
        except BaseException:
            _remove_kernel_dir(km)
            raise
    _guard(km)
    return km


#: The folders of run-as-owner kernels (connection file, sockets), by kernel manager.
_kernel_dirs: dict[int, Path] = {}


def _remove_kernel_dir(km: AsyncKernelManager) -> None:
    folder = _kernel_dirs.pop(id(km), None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def kernel_process_group(km: AsyncKernelManager) -> int | None:
    """The process group of a started kernel (what its cells start belongs to it too)."""
    provisioner = km.provisioner
    return getattr(provisioner, "pgid", None) if provisioner is not None else None


def kill_process_group(pgid: int | None, signum: int = signal.SIGKILL) -> None:
    """Signal a kernel's whole process group; a group that is already gone is fine."""
    if pgid is None or pgid <= 1:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def shutdown_kernel(km: AsyncKernelManager) -> None:
    """Stop a kernel and everything its cells started, and wait until they are gone."""
    pgid = kernel_process_group(km)
    kill_process_group(pgid)
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        log.debug("kernel shutdown failed", exc_info=True)
    kill_process_group(pgid)
    _release_guard(km)
    _remove_kernel_dir(km)


async def _answered(kc: AsyncKernelClient, msg_id: str, timeout: float) -> dict[str, Any] | None:
    """The shell reply to request ``msg_id`` once IOPub said the kernel went idle after it
    (so everything the kernel published before is drained too); ``None`` on a timeout.

    Replies and IOPub messages of other requests are skipped.
    """
    deadline = time.monotonic() + timeout
    reply: dict[str, Any] | None = None
    while reply is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            msg = await kc.get_shell_msg(timeout=remaining)
        except queue.Empty:
            return None
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg
    # The idle status follows the reply within milliseconds once IOPub is subscribed; a
    # short wait tells an IOPub subscription that is not through yet.
    deadline = time.monotonic() + min(timeout, 0.5)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            msg = await kc.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            return None
        if (
            msg["msg_type"] == "status"
            and msg["parent_header"].get("msg_id") == msg_id
            and msg["content"].get("execution_state") == "idle"
        ):
            return reply


async def _ready_client(km: AsyncKernelManager, timeout: float) -> AsyncKernelClient:
    """A client of ``km`` whose kernel has answered and whose IOPub is drained.

    jupyter_client's ``wait_for_ready`` waits 0.2 s of IOPub silence to know it drained the
    start-up messages; waiting for the idle status of our own request is exact and free.
    """
    kc: AsyncKernelClient = km.client()
    kc.start_channels()
    deadline = time.monotonic() + timeout
    try:
        while await _answered(kc, kc.kernel_info(), 1.0) is None:
            if not await km.is_alive():
                raise RuntimeError("the kernel died before it answered")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel did not answer within {timeout:g} s")
    except BaseException:
        kc.stop_channels()
        raise
    kc.allow_stdin = False
    return kc


async def _chdir(kc: AsyncKernelClient, cwd: Path, timeout: float) -> None:
    """Move a prepared Python kernel to its run's directory. Nothing is bound in the user
    namespace and the history and execution count are untouched."""
    msg_id = kc.execute(f"__import__('os').chdir({str(cwd)!r})", silent=True, store_history=False)
    reply = await _answered(kc, msg_id, timeout)
    if reply is None or reply["content"].get("status") != "ok":
        raise RuntimeError(f"the kernel could not move to {cwd}")


@dataclass(eq=False)
class Kernel:
    """A kernel started for one run, and once ready its connected client."""

    km: AsyncKernelManager
    name: str
    #: Whose account it runs as (``None``: this process's own).
    account: OwnerAccount | None = None
    client: AsyncKernelClient | None = None

    def make_ready(self, timeout: float = KERNEL_START_TIMEOUT) -> AsyncKernelClient:
        """Connect the client and wait until the kernel answers (from the using thread:
        the client belongs to that thread's event loop)."""
        if self.client is None:
            self.client = run_sync(_ready_client)(self.km, timeout)
        return self.client

    def alive(self) -> bool:
        return bool(run_sync(self.km.is_alive)())

    def close_client(self) -> None:
        """Close the client's sockets (from the thread that made it ready)."""
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.stop_channels()


class Reaper:
    """Tears kernels down on its own thread: a run's outcome never waits for that.

    The process group is killed before a kernel is handed over (:meth:`retire`); what is
    left here is waiting for the processes and removing connection files and the guard.
    """

    def __init__(self, teardown: Callable[[AsyncKernelManager], None] = shutdown_kernel) -> None:
        self.teardown = teardown
        self._queue: queue.SimpleQueue[AsyncKernelManager | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def retire(self, km: AsyncKernelManager) -> None:
        """Kill ``km``'s process group now; finish its teardown in the background."""
        kill_process_group(kernel_process_group(km))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="sched-kernel-reaper", daemon=True
                )
                self._thread.start()
        self._queue.put(km)

    def _loop(self) -> None:
        while (km := self._queue.get()) is not None:
            try:
                self.teardown(km)
            except Exception:
                log.warning("kernel teardown failed", exc_info=True)

    def join(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the teardowns handed over so far."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)


class KernelSupply:
    """Kernels for the runs of a worker's threads.

    Kernel start is the largest fixed cost of a run, so while a run is expected each
    thread keeps one kernel prepared (started, connected, drained), and launches the next
    one as soon as it takes one, so that it boots while the run executes. Only Python
    kernels are prepared, because moving a running kernel to the run's directory needs a
    line of code in the kernel's language. A kernel belongs to the thread that prepared it
    (its client runs on that thread's event loop), so each thread takes and tends its own.
    """

    def __init__(
        self,
        prestart: str | None,
        neutral_dir: Path,
        *,
        expect_seconds: float = EXPECT_SECONDS,
        reaper: Reaper | None = None,
    ) -> None:
        self.prestart_name = prestart
        self.neutral_dir = neutral_dir
        self.expect_seconds = expect_seconds
        self.reaper = reaper or Reaper()
        self._prepared: dict[int, Kernel] = {}
        #: The account of each thread's last run: its next kernel is prepared as that user.
        self._accounts: dict[int, OwnerAccount | None] = {}
        self._expected_until = 0.0
        self._lock = threading.Lock()

    # -- expectation ----------------------------------------------------------------------

    def expect(self, seconds: float | None = None) -> None:
        """A run is expected within ``seconds`` (default: :attr:`expect_seconds`)."""
        until = time.monotonic() + (self.expect_seconds if seconds is None else seconds)
        with self._lock:
            self._expected_until = max(self._expected_until, until)

    @property
    def expected(self) -> bool:
        """Whether a run is expected now (prepared kernels are kept only then)."""
        return time.monotonic() < self._expected_until

    # -- from a worker thread -------------------------------------------------------------

    def take(self, name: str, cwd: Path, account: OwnerAccount | None = None) -> Kernel:
        """A ready kernel ``name`` running in ``cwd`` as ``account``, for one run.

        Hand it back with :meth:`retire` when the run ends.
        """
        with self._lock:
            prepared = self._prepared.pop(threading.get_ident(), None)
            # The thread's next kernel is prepared for the same owner (on a hub, kernels
            # run as their run's owner: one prepared for alice serves only alice).
            self._accounts[threading.get_ident()] = account
        if prepared is not None:
            if (prepared.name, prepared.account) == (name, account) and prepared.alive():
                try:
                    client = prepared.make_ready()
                    run_sync(_chdir)(client, cwd, KERNEL_START_TIMEOUT)
                except Exception:
                    log.warning("a prepared kernel failed; starting another", exc_info=True)
                    self.retire(prepared)
                else:
                    self._launch_next()
                    return prepared
            else:
                self.retire(prepared)
        kernel = self._start(name, cwd, account)
        try:
            kernel.make_ready()
        except BaseException:
            self.retire(kernel)
            raise
        self._launch_next()
        return kernel

    def tend(self) -> None:
        """Prepare this thread's next kernel while a run is expected, drop it otherwise
        (call from the thread, between runs)."""
        me = threading.get_ident()
        if not self.expected:
            with self._lock:
                stale = self._prepared.pop(me, None)
            if stale is not None:
                self.retire(stale)
            return
        self._launch_next()
        with self._lock:
            kernel = self._prepared.get(me)
        if kernel is None or kernel.client is not None:
            return
        try:
            kernel.make_ready()
        except Exception:
            log.warning("a prepared %s kernel failed", kernel.name, exc_info=True)
            with self._lock:
                if self._prepared.get(me) is kernel:
                    del self._prepared[me]
            self.retire(kernel)

    def retire(self, kernel: Kernel) -> None:
        """The kernel's run is over: kill it now, tear it down in the background (call
        from the thread that used it, which owns its client)."""
        kernel.close_client()
        self.reaper.retire(kernel.km)

    def _launch_next(self) -> None:
        me = threading.get_ident()
        name = self.prestart_name
        if not name or not self.expected or kernel_language(name) != "python":
            return
        with self._lock:
            if me in self._prepared:
                return
            account = self._accounts.get(me)
        cwd = Path(account.home) if account is not None else self.neutral_dir
        try:
            kernel = self._start(name, cwd, account)
        except Exception:
            log.warning("could not pre-start a %s kernel", name, exc_info=True)
            return
        with self._lock:
            self._prepared[me] = kernel

    def _start(self, name: str, cwd: Path, account: OwnerAccount | None) -> Kernel:
        return Kernel(start_kernel(name, cwd, account), name, account)

    # -- from any thread ---------------------------------------------------------------------

    def discard(self) -> None:
        """Kill every prepared kernel now (the worker stops; their clients are abandoned)."""
        with self._lock:
            prepared, self._prepared = list(self._prepared.values()), {}
        for kernel in prepared:
            kill_process_group(kernel_process_group(kernel.km))
            _release_guard(kernel.km)
            with contextlib.suppress(Exception):
                kernel.km.cleanup_connection_file()
                kernel.km.cleanup_ipc_files()
            _remove_kernel_dir(kernel.km)

    @property
    def prepared_count(self) -> int:
        """Kernels kept prepared now."""
        with self._lock:
            return len(self._prepared)
