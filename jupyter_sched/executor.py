"""Execute one notebook with papermill on a fresh kernel, under the worker's control.

The worker thread calls :meth:`Execution.run`; another thread may call
:meth:`Execution.abort` (cancel, timeout, shutdown), which interrupts the kernel and, after
a grace period, kills its whole process group. The outcome is decided from what happened
here (cell error, kernel death, abort), never from the output notebook's metadata.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError

from .config import kernel_environ
from .lifecycle import Outcome
from .notebooks import kernel_language, notebook_kernel
from .owners import OwnerAccount

log = logging.getLogger(__name__)

ENGINE_NAME = "jupyter_sched"
#: Seconds a kernel gets to start and answer.
KERNEL_START_TIMEOUT = 60
#: Tags of the cells papermill adds to the executed notebook: the injected parameters,
#: and the two markers around a failing cell.
PAPERMILL_TAGS = frozenset({"injected-parameters", "papermill-error-cell-tag"})

#: Messages recorded as the error of a run that was stopped from outside.
ABORT_MESSAGES = {
    "cancelled": ("Cancelled", "the run was cancelled"),
    "timed_out": ("Timeout", "the run exceeded its timeout of {timeout:g} s"),
    "lost": ("WorkerShutdown", "the worker stopped before the run finished"),
}


class SchedNotebookClient(PapermillNotebookClient):  # type: ignore[misc]
    """papermill's client plus a working-directory change for pre-started kernels."""

    def __init__(self, nb_man: Any, *, working_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.working_dir = working_dir

    def start_new_kernel_client(self) -> Any:
        kc = super().start_new_kernel_client()
        if self.working_dir:
            # A pre-started kernel was launched before its run's directory was known.
            # Nothing is bound in the user namespace and the history is untouched.
            code = f"__import__('os').chdir({self.working_dir!r})"
            msg_id = kc.execute(code, silent=True, store_history=False)
            self.wait_for_reply(msg_id)
        return kc


class SchedEngine(NBClientEngine):  # type: ignore[misc]
    """papermill engine that uses the worker's kernel and reports each cell's start."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        *,
        km: AsyncKernelManager,
        working_dir: str | None,
        on_cell_start: Callable[[int, int, int], None],
        log_output: bool = False,
        stdout_file: IO[str] | None = None,
        stderr_file: IO[str] | None = None,
        start_timeout: int = KERNEL_START_TIMEOUT,
        **kwargs: Any,
    ) -> Any:
        cells = nb_man.nb.cells
        cell_start = nb_man.cell_start

        def reporting_cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> None:
            index = cell_index or 0
            position = notebook_cell_position(cells, index)
            if position is not None:  # papermill's injected cell is not the user's
                on_cell_start(index, position[0] - 1, position[1])
            cell_start(cell, cell_index, **kw)

        nb_man.cell_start = reporting_cell_start
        client = SchedNotebookClient(
            nb_man,
            km=km,
            working_dir=working_dir,
            kernel_name=kernel_name,
            startup_timeout=start_timeout,
            timeout=None,
            log=logging.getLogger("papermill"),
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        try:
            return client.execute()
        finally:
            # The client does not own the kernel, so nbclient leaves its channels open.
            if client.kc is not None:
                client.kc.stop_channels()


papermill_engines.register(ENGINE_NAME, SchedEngine)


def is_notebook_cell(cell: Any) -> bool:
    """Whether a cell of an executed notebook is one of the user's (not papermill's)."""
    return not PAPERMILL_TAGS.intersection(cell.get("metadata", {}).get("tags", []))


def notebook_cell_position(cells: list[Any], index: int) -> tuple[int, int] | None:
    """Cell ``index`` of an executed notebook as (its number in the user's notebook,
    counted from 1, and how many cells that notebook has); ``None`` for a cell papermill
    added or an index out of range.

    The executed notebook has papermill's cells too (the injected parameters, the error
    markers), so its indices are not those the user sees in their own notebook.
    """
    if not 0 <= index < len(cells) or not is_notebook_cell(cells[index]):
        return None
    before = sum(1 for cell in cells[:index] if is_notebook_cell(cell))
    return before + 1, sum(1 for cell in cells if is_notebook_cell(cell))


def describe_cell(cells: list[Any], index: int) -> str:
    """Where cell ``index`` of an executed notebook is, in words a reader can find:
    ``'cell 4 of 5 of the notebook (cell 6 of the executed notebook)'``."""
    executed = f"cell {index + 1} of the executed notebook"
    position = notebook_cell_position(cells, index)
    if position is None:
        return executed
    return f"cell {position[0]} of {position[1]} of the notebook ({executed})"


class KernelSupply:
    """Kernels for the runs of a worker's threads.

    Kernel start is the largest fixed cost of a run, so after each run a thread launches
    the kernel for its next run. Each kernel serves exactly one run: every run starts
    with fresh interpreter state. Only Python kernels are pre-started, because moving
    a running kernel to the run's directory needs a line of code in the kernel's language.
    A kernel belongs to the thread that started it (its client runs on that thread's
    event loop), so each thread takes and refills only its own. On a hub, kernels run as
    their run's owner: a pre-started kernel is kept for the owner of the thread's last run
    and serves only a run of that same owner.
    """

    def __init__(self, prestart: str | None, neutral_dir: Path) -> None:
        self.prestart_name = prestart
        self.neutral_dir = neutral_dir
        self._ready: dict[int, tuple[AsyncKernelManager, OwnerAccount | None]] = {}
        self._lock = threading.Lock()

    def take(
        self, name: str, cwd: Path, account: OwnerAccount | None = None
    ) -> tuple[AsyncKernelManager, bool]:
        """A started kernel ``name`` (running as ``account``, if given) and whether it still
        has to move to ``cwd``."""
        with self._lock:
            ready, owner = self._ready.pop(threading.get_ident(), (None, None))
        if ready is not None and ready.kernel_name == name and owner == account and _alive(ready):
            return ready, True
        if ready is not None:
            shutdown_kernel(ready)
        return start_kernel(name, cwd, account), False

    def refill(self, account: OwnerAccount | None = None) -> None:
        """Launch the next kernel of this thread, as ``account`` if given (call after a run,
        from the same thread)."""
        me = threading.get_ident()
        if not self.prestart_name or me in self._ready:
            return
        if kernel_language(self.prestart_name) != "python":
            return
        cwd = Path(account.home) if account is not None else self.neutral_dir
        try:
            km = start_kernel(self.prestart_name, cwd, account)
        except Exception:
            log.warning("could not pre-start a %s kernel", self.prestart_name, exc_info=True)
            return
        with self._lock:
            self._ready[me] = (km, account)

    def discard(self) -> None:
        """Stop every pre-started kernel (from any thread: the process groups are killed)."""
        with self._lock:
            ready, self._ready = [km for km, _ in self._ready.values()], {}
        for km in ready:
            kill_process_group(kernel_process_group(km))
            _release_guard(km)
            with contextlib.suppress(Exception):
                km.cleanup_connection_file()
                km.cleanup_ipc_files()
            _remove_kernel_dir(km)


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


def _alive(km: AsyncKernelManager) -> bool:
    return bool(run_sync(km.is_alive)())


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
    """Stop a kernel and everything its cells started."""
    pgid = kernel_process_group(km)
    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        log.debug("kernel shutdown failed", exc_info=True)
    kill_process_group(pgid)
    _release_guard(km)
    _remove_kernel_dir(km)


@dataclass
class RunFiles:
    """Where one run's notebook comes from and where its results go (absolute paths)."""

    input: Path
    output: Path
    log: Path
    html: Path | None
    cwd: Path


class Execution:
    """One notebook execution, which another thread may abort."""

    def __init__(
        self,
        files: RunFiles,
        parameters: dict[str, Any],
        kernel_name: str | None,
        *,
        kernels: KernelSupply,
        on_progress: Callable[[int, int], None],
        timeout_seconds: float | None = None,
        kill_grace_seconds: float = 1.0,
        account: OwnerAccount | None = None,
    ) -> None:
        self.files = files
        #: The Unix account the kernel runs as (``None``: this process's own).
        self.account = account
        self.parameters = parameters
        self.kernel_name = kernel_name
        self.kernels = kernels
        self.on_progress = on_progress
        self.timeout_seconds = timeout_seconds
        self.kill_grace_seconds = kill_grace_seconds
        self.abort_reason: str | None = None
        #: Index in the executed notebook of the cell running now (what error.cell_index
        #: records), and where that cell is in the user's own notebook, for messages.
        self.current_cell: int | None = None
        self.current_cell_text = ""
        self._km: AsyncKernelManager | None = None
        self._lock = threading.Lock()
        self._log_file: IO[str] | None = None

    # -- control from other threads -------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Stop the run: interrupt the kernel now, kill its process group after the grace."""
        with self._lock:
            if self.abort_reason is not None:
                return
            self.abort_reason = reason
            km = self._km
        self.log_line(f"stopping: {ABORT_MESSAGES[reason][1]}")
        if km is None:
            return
        pgid = kernel_process_group(km)
        kill_process_group(pgid, signal.SIGINT)
        timer = threading.Timer(self.kill_grace_seconds, kill_process_group, (pgid,))
        timer.daemon = True
        timer.start()

    # -- the run itself ---------------------------------------------------------------

    def log_line(self, text: str) -> None:
        """Append a timestamped line to the run's log."""
        f = self._log_file
        if f is not None and not f.closed:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            f.write(f"[{stamp}] {text}\n")
            f.flush()

    def run(self) -> Outcome:
        """Execute the notebook; always writes the output notebook and the log."""
        files = self.files
        files.output.parent.mkdir(parents=True, exist_ok=True)
        with open(files.log, "a", encoding="utf-8", buffering=1) as log_file:
            self._log_file = log_file
            try:
                return self._run()
            finally:
                self.log_line(f"finished; output at {files.output.name}")
                self._log_file = None

    def _run(self) -> Outcome:
        files = self.files
        try:
            kernel_name = notebook_kernel(
                nbformat.read(str(files.input), as_version=4), self.kernel_name
            )
        except Exception as exc:  # noqa: BLE001 - an unreadable snapshot fails the run
            return self._failure(exc, "cannot read the notebook")
        language = kernel_language(kernel_name)
        if language is None:
            return Outcome("failed", "NoSuchKernel", f"no kernel named {kernel_name!r}")
        self.log_line(f"starting kernel {kernel_name}")
        started = time.monotonic()
        try:
            km, move = self.kernels.take(kernel_name, files.cwd, self.account)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start fails the run
            return self._failure(exc, "the kernel did not start")
        with self._lock:
            self._km = km
            aborted = self.abort_reason is not None
        try:
            if aborted:
                return self._aborted_outcome()
            return self._execute(km, kernel_name, language, move, started)
        finally:
            shutdown_kernel(km)
            self._write_html()

    def _execute(
        self, km: AsyncKernelManager, kernel_name: str, language: str, move: bool, started: float
    ) -> Outcome:
        files = self.files

        def on_cell_start(executed_index: int, index: int, total: int) -> None:
            if self.current_cell is None:
                self.log_line(f"kernel ready in {time.monotonic() - started:.2f}s")
            self.current_cell = executed_index
            self.current_cell_text = f"cell {index + 1} of {total} of the notebook"
            self.log_line(f"cell {index + 1}/{total}")
            self.on_progress(index, total)

        try:
            # papermill formats both paths with the parameters: make that a no-op.
            nb = papermill.execute_notebook(
                _unformattable(files.input),
                _unformattable(files.output),
                parameters=self.parameters,
                engine_name=ENGINE_NAME,
                kernel_name=kernel_name,
                # the kernel's language, for notebooks whose metadata names none
                language=language,
                progress_bar=False,
                request_save_on_cell_execute=True,
                stdout_file=self._log_file,
                stderr_file=self._log_file,
                km=km,
                working_dir=str(files.cwd) if move else None,
                on_cell_start=on_cell_start,
            )
        except PapermillExecutionError as exc:
            if self.abort_reason:
                return self._aborted_outcome()
            failing, where = _error_cell(files.output, exc.cell_index)
            self.log_line(f"failed in {where}: {exc.ename}: {_one_line(exc.evalue)}")
            return Outcome("failed", exc.ename, _one_line(exc.evalue), failing)
        except DeadKernelError:
            if self.abort_reason:
                return self._aborted_outcome()
            cell = self.current_cell
            where = f" while running {self.current_cell_text}" if cell is not None else ""
            self.log_line(f"the kernel died{where}")
            return Outcome("failed", "DeadKernelError", f"the kernel died{where}", cell)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong is the run's error
            if self.abort_reason:
                return self._aborted_outcome()
            return self._failure(exc, "execution failed")
        total = sum(1 for cell in nb.cells if is_notebook_cell(cell))
        self.on_progress(total, total)
        return Outcome("succeeded")

    def _aborted_outcome(self) -> Outcome:
        reason = self.abort_reason or "cancelled"
        ename, template = ABORT_MESSAGES[reason]
        return Outcome(
            reason, ename, template.format(timeout=self.timeout_seconds or 0), self.current_cell
        )

    def _failure(self, exc: BaseException, context: str) -> Outcome:
        self.log_line(f"{context}: {type(exc).__name__}: {exc}")
        return Outcome("failed", type(exc).__name__, _one_line(str(exc)) or context)

    def _write_html(self) -> None:
        html = self.files.html
        if html is None or not self.files.output.exists():
            return
        try:
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter(log=_HTML_LOG).from_filename(str(self.files.output))
            html.write_text(body, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - a failed HTML export must not fail the run
            self.log_line(f"HTML export failed: {type(exc).__name__}: {exc}")


def _error_cell(output: Path, fallback: int) -> tuple[int, str]:
    """The index of the failing cell in the stored output, and where it is in words.

    papermill inserts marker cells into the output notebook after it saw the error, so
    its index is off; the stored index is that of the failing cell in the stored output.
    """
    try:
        nb = nbformat.read(str(output), as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable output keeps papermill's index
        return fallback, f"cell {fallback + 1} of the executed notebook"
    for index, cell in enumerate(nb.cells):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return index, describe_cell(nb.cells, index)
    return fallback, describe_cell(nb.cells, fallback)


class _WithoutAltTextNotice(logging.Filter):
    """Drops nbconvert's notice about images without alternative text: plots in notebook
    outputs never have any, so it would be printed for nearly every HTML output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Alternative text is missing")


#: The logger of HTML exports: nbconvert's other warnings still reach the worker's log.
_HTML_LOG = logging.getLogger(f"{__name__}.html")
_HTML_LOG.addFilter(_WithoutAltTextNotice())


def _unformattable(path: Path) -> str:
    """``path`` as a string that ``str.format`` leaves unchanged (braces doubled)."""
    return str(path).replace("{", "{{").replace("}", "}}")


def _one_line(text: str, limit: int = 2000) -> str:
    return " ".join(str(text).split())[:limit]
