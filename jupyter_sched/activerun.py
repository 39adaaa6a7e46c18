"""A run a worker holds, from its claim until its outcome is written: its execution,
deadline and progress, and how it is aborted (by the watcher, a cancel or a stop)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .executor import Execution


class ActiveRun:
    """A run this worker holds, as the watcher sees it: from its claim until its outcome
    is written (its execution is set while the notebook runs)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.execution: Execution | None = None
        self.deadline: float | None = None
        #: The notebook has ended; only the outcome remains to be written.
        self.ended = False
        self.progress: tuple[int, int] = (0, 0)
        self.progress_written: tuple[int, int] = (0, 0)
        self._abort_reason: str | None = None
        self._lock = threading.Lock()

    def attach(self, execution: Execution, deadline: float | None) -> None:
        """The execution of the run is about to start (stopped at once if asked before)."""
        with self._lock:
            self.execution, self.deadline = execution, deadline
            reason = self._abort_reason
        if reason is not None:
            execution.abort(reason)

    def abort(self, reason: str) -> None:
        """Stop the execution, now or as soon as it is attached; nothing once it ended."""
        with self._lock:
            if self.ended:
                return
            self._abort_reason = self._abort_reason or reason
            execution = self.execution
        if execution is not None:
            execution.abort(reason)

    def end(self) -> None:
        """The notebook has ended: only its outcome remains to be written."""
        with self._lock:
            self.ended = True
