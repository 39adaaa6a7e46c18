"""Execute one notebook with papermill on a fresh kernel, under the worker's control.

The worker thread calls :meth:`Execution.run`; another thread may call
:meth:`Execution.abort` (cancel, timeout, shutdown), which interrupts the kernel and, after
a grace period, kills its whole process group. The outcome is decided from what happened
here (cell error, kernel death, abort), never from the output notebook's metadata.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import nbformat
import papermill
from jupyter_client.asynchronous.client import AsyncKernelClient
from nbclient.exceptions import DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError

from .clock import utcnow
from .kernels import Kernel, KernelSupply, kernel_process_group, kill_process_group
from .notebooks import kernel_language, notebook_kernel
from .owners import OwnerAccount
from .pdf import render_pdf
from .renders import write_renders
from .statuses import Outcome

log = logging.getLogger(__name__)

ENGINE_NAME = "jupyter_sched"
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
    """papermill's client on a kernel the worker prepared: started, connected and drained,
    so that nbclient neither starts a kernel nor waits for one to be ready."""

    def __init__(self, nb_man: Any, *, kc: AsyncKernelClient, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.kc = kc


class SchedEngine(NBClientEngine):  # type: ignore[misc]
    """papermill engine that uses the worker's kernel and reports each cell's start."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        *,
        kernel: Kernel,
        on_cell_start: Callable[[int, int, int], None],
        log_output: bool = False,
        stdout_file: IO[str] | None = None,
        stderr_file: IO[str] | None = None,
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
            km=kernel.km,
            kc=kernel.make_ready(),  # ready already: returns its client
            kernel_name=kernel_name,
            timeout=None,
            log=logging.getLogger("papermill"),
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        # The client owns neither the kernel nor its client: the worker retires both.
        return client.execute()


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


@dataclass
class RunFiles:
    """Where one run's notebook comes from and where its results go (absolute paths)."""

    input: Path
    output: Path
    log: Path
    html: Path | None
    cwd: Path
    #: Where the PDF rendering goes (``None``: the run asked for none).
    pdf: Path | None = None


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
        chromium_path: str | None = None,
    ) -> None:
        self.files = files
        #: The Chromium that prints the PDF output (``None``: the system's).
        self.chromium_path = chromium_path
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
        self._kernel: Kernel | None = None
        self._lock = threading.Lock()
        self._log_file: IO[str] | None = None

    # -- control from other threads -------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Stop the run: interrupt the kernel now, kill its process group after the grace."""
        with self._lock:
            if self.abort_reason is not None:
                return
            self.abort_reason = reason
            kernel = self._kernel
        self.log_line(f"stopping: {ABORT_MESSAGES[reason][1]}")
        if kernel is None:
            return
        pgid = kernel_process_group(kernel.km)
        kill_process_group(pgid, signal.SIGINT)
        timer = threading.Timer(self.kill_grace_seconds, kill_process_group, (pgid,))
        timer.daemon = True
        timer.start()

    # -- the run itself ---------------------------------------------------------------

    def log_line(self, text: str) -> None:
        """Append a timestamped line to the run's log."""
        f = self._log_file
        if f is not None and not f.closed:
            stamp = utcnow().strftime("%H:%M:%S")
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
            kernel = self.kernels.take(kernel_name, files.cwd, self.account)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start fails the run
            return self._failure(exc, "the kernel did not start")
        with self._lock:
            self._kernel = kernel
            aborted = self.abort_reason is not None
        try:
            if aborted:
                return self._aborted_outcome()
            return self._execute(kernel, kernel_name, language, started)
        finally:
            # Killed now, torn down in the background: the outcome does not wait for it.
            self.kernels.retire(kernel)
            self._write_renders()

    def _execute(self, kernel: Kernel, kernel_name: str, language: str, started: float) -> Outcome:
        files = self.files

        def on_cell_start(executed_index: int, index: int, total: int) -> None:
            if self.current_cell is None:
                self.log_line(f"kernel ready in {time.monotonic() - started:.2f}s")
            self.current_cell = executed_index
            self.current_cell_text = f"cell {index + 1} of {total} of the notebook"
            self.log_line(f"cell {index + 1}/{total}")
            self.on_progress(index, total)

        # Registered here, where it is used, so that importing this module changes nothing
        # in papermill (registering again replaces the entry with the same engine).
        papermill_engines.register(ENGINE_NAME, SchedEngine)
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
                kernel=kernel,
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

    def _write_renders(self) -> None:
        files = self.files
        write_renders(
            files.output, html=files.html, folder=files.output.parent, log_line=self.log_line
        )
        if files.pdf is not None and files.output.exists():
            self.log_line("rendering the PDF")
            # In a process of its own, as the kernel: the browser runs the outputs' scripts.
            render_pdf(
                files.output,
                files.pdf,
                chromium=self.chromium_path,
                account=self.account,
                log_line=self.log_line,
            )


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


def _unformattable(path: Path) -> str:
    """``path`` as a string that ``str.format`` leaves unchanged (braces doubled)."""
    return str(path).replace("{", "{{").replace("}", "}}")


def _one_line(text: str, limit: int = 2000) -> str:
    return " ".join(str(text).split())[:limit]
