"""The embedded worker's supervisor: a ``jupyter sched worker`` subprocess that the server
starts with itself, restarts with backoff when it dies, and stops with itself.

An idle scheduler stays light: the worker exits by itself (code 0) after a while with no
run and none expected, and the supervisor starts it again when work comes: a run is
enqueued or hinted (a datagram on the wake-up folder, from any process), or a periodic
look finds a run waiting or a job due soon.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from logging import Logger
from pathlib import Path

import psutil

from .config import CREDENTIAL_VARIABLES, ENV_PREFIX, Settings
from .wakeup import Doorbell


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of the embedded worker: the server's, with its deployment's
    variables replaced by this server's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings.worker_environ())
    return env


class WorkerProcess:
    """A ``jupyter sched worker`` subprocess, restarted with backoff when it dies.

    ``env``'s ``JUPYTER_SCHED_*`` variables (the deployment, credentials included) reach the
    worker as JSON on its standard input (``--settings-from-stdin``), never in its exec
    environment, which its kernels could read from ``/proc``; the credentials of Jupyter
    and the hub (the server's token) do not reach it at all.

    The worker runs kernels in their own sessions; when it dies without cleaning up (it
    was killed), the kernels it had started are killed here, from the list of its
    descendants that the watchdog keeps.
    """

    #: How often the watchdog looks at the process (and at its descendants).
    WATCH_SECONDS = 0.5
    #: A worker that lived this long resets the restart delay.
    STABLE_SECONDS = 60.0
    #: How often, while the worker is away idle, the supervisor asks whether work waits.
    DEMAND_SECONDS = 2.0
    #: A wake-up this recent when the worker exits idle starts it again at once.
    RECENT_WAKE_SECONDS = 10.0

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        log: Logger,
        *,
        stop_timeout: float = 30.0,
        max_delay: float = 60.0,
        demand: Callable[[], bool] | None = None,
        wake_data_dir: Path | None = None,
    ) -> None:
        """``demand`` says whether work waits or is due soon (asked while the worker is
        away idle); ``wake_data_dir`` is the embedded queue's data dir, whose wake-ups
        start the worker again at once."""
        self.argv = argv
        self.env = {
            k: v
            for k, v in env.items()
            if not k.startswith(ENV_PREFIX) and k not in CREDENTIAL_VARIABLES
        }
        self.settings_json = json.dumps({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
        self.log = log
        self.stop_timeout = stop_timeout
        self.max_delay = max_delay
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._started_at = 0.0
        self._descendants: list[psutil.Process] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.demand = demand
        #: The worker exited idle; started again on demand.
        self.idle = False
        self._woken_at = 0.0
        self._doorbell = (
            Doorbell(wake_data_dir, on_prepare=self.wake, on_wake=self.wake)
            if wake_data_dir is not None
            else None
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def watched_pids(self) -> set[int]:
        """The worker's descendants as the watchdog last listed them: what it kills should
        the worker die without cleaning up."""
        return {process.pid for process in self._descendants}

    @property
    def status(self) -> str:
        if self._stop.is_set():
            return "stopped"
        code = self.proc.poll() if self.proc is not None else None
        if self.idle or (code == 0 and self.demand is not None):
            return "idle"  # also between its exit and the watchdog's next look
        if self.proc is not None and code is None:
            return "running"
        return "restarting"

    def wake(self) -> None:
        """Work came (or is about to): start the worker if it exited idle."""
        self._woken_at = time.monotonic()
        self._start_if_idle()

    def _start_if_idle(self) -> None:
        if not self.idle:
            return
        with self._lock:
            if self.idle and not self._stop.is_set():
                self.idle = False
                self._spawn()
                self.log.info("jupyter-sched: embedded worker started again for work")

    def start(self) -> None:
        if self._doorbell is not None:
            self._doorbell.open()
        with self._lock:
            self._spawn()
        self._thread = threading.Thread(
            target=self._watch, name="jupyter-sched-worker-watchdog", daemon=True
        )
        self._thread.start()

    def _spawn(self) -> None:
        # Its own session: a Ctrl-C in the server's terminal does not reach it; the server
        # stops it (and it stops itself if the server dies: --exit-with-parent).
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.PIPE, start_new_session=True
        )
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died at once: the watchdog sees it
            self.proc.stdin.write(self.settings_json.encode())
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self._started_at = time.monotonic()
        self._descendants = []
        self.log.info("jupyter-sched: embedded worker started (pid %d)", self.proc.pid)

    def _watch(self) -> None:
        delay = 1.0
        last_scan = 0.0
        while not self._stop.wait(self.WATCH_SECONDS):
            if self.idle:
                if time.monotonic() - last_scan >= self.DEMAND_SECONDS:
                    last_scan = time.monotonic()
                    if self._work_waits():
                        self._start_if_idle()
                continue
            proc = self.proc
            assert proc is not None
            code = proc.poll()
            if code is None:
                if time.monotonic() - last_scan >= 2.0:
                    self._scan(proc.pid)
                    last_scan = time.monotonic()
                continue
            if code == 0 and self.demand is not None:
                self._kill_leftovers(quiet=True)  # kernels it was still tearing down
                with self._lock:
                    self.idle = True
                self.log.info("jupyter-sched: embedded worker idle; it stops until work comes")
                if time.monotonic() - self._woken_at < self.RECENT_WAKE_SECONDS:
                    self._start_if_idle()  # work may have come while it was leaving
                continue
            lived = time.monotonic() - self._started_at
            if lived >= self.STABLE_SECONDS:
                delay = 1.0
            self.log.warning(
                "jupyter-sched: embedded worker (pid %d) exited with code %s after %.0f s; "
                "restarting in %.0f s",
                proc.pid, code, lived, delay,
            )  # fmt: skip
            self._kill_leftovers()
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.max_delay)
            with self._lock:
                if self._stop.is_set():
                    return
                self._spawn()
                self.restarts += 1

    def _work_waits(self) -> bool:
        assert self.demand is not None
        try:
            return self.demand()
        except Exception:  # the database is away: the next look may tell
            self.log.debug("jupyter-sched: cannot tell whether work waits", exc_info=True)
            return False

    def _scan(self, pid: int) -> None:
        with contextlib.suppress(psutil.Error):
            self._descendants = psutil.Process(pid).children(recursive=True)

    def _kill_leftovers(self, *, quiet: bool = False) -> None:
        """Kill what the worker started and left running (its kernels' process groups);
        ``quiet`` after an exit of its own, where that is no news."""
        own_group = os.getpgrp()
        for process in self._descendants:
            try:
                if not process.is_running():
                    continue
                group = os.getpgid(process.pid)
                if group != own_group:
                    os.killpg(group, signal.SIGKILL)
                process.kill()
                if not quiet:
                    self.log.warning("jupyter-sched: killed leftover process %d", process.pid)
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        self._descendants = []

    def stop(self) -> None:
        """SIGTERM (the worker aborts its runs and kernels), wait, then SIGKILL."""
        self._stop.set()
        if self._doorbell is not None:
            self._doorbell.close()
        with self._lock:
            proc = self.proc
        if self._thread is not None:
            self._thread.join(5)
        if proc is not None and proc.poll() is None:
            self._scan(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.log.warning("jupyter-sched: embedded worker did not stop; killing it")
                self._scan(proc.pid)
                proc.kill()
                proc.wait(10)
        self._kill_leftovers()
        self.log.info("jupyter-sched: embedded worker stopped")
