"""The huey consumer of a worker, whose threads wake as soon as work is enqueued.

huey's consumer threads poll an embedded (SQLite) queue with a growing delay; these sleep
on an event instead, set by the doorbell (:mod:`jupyter_sched.wakeup`) when a run is
enqueued, so a run starts without waiting out a poll. Each idle moment calls back the
worker (it prepares kernels when a job is due soon).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .hueyload import load_huey

load_huey()  # before huey.consumer imports huey: without the clients of unused storages
from huey.consumer import Consumer  # noqa: E402
from huey.consumer import Worker as ConsumerThread  # noqa: E402


class WakingConsumerThread(ConsumerThread):  # type: ignore[misc]
    """A huey consumer thread that sleeps until woken (work enqueued, a hint, stopping) or
    until its poll is due, and tends its prepared kernel between runs."""

    #: Set when work for this thread's queue was enqueued; ``None``: poll only.
    wake: threading.Event | None = None
    #: Called on this thread whenever it is idle (after each empty poll).
    on_idle: Callable[[], None] = staticmethod(lambda: None)

    def loop(self, now: datetime | None = None) -> None:
        super().loop(now)
        if self.huey.storage.blocking and not self.stop_flag.is_set():
            self.on_idle()  # a blocking queue (Redis) never calls sleep()

    delay: float
    default_delay: float
    max_delay: float
    backoff: float

    def sleep(self) -> None:
        delay = min(self.delay, self.max_delay)
        woken = self.wake.wait(delay) if self.wake is not None else self.stop_flag.wait(delay)
        if woken and self.wake is not None:
            self.wake.clear()
            self.delay = self.default_delay
        else:
            self.delay *= self.backoff
        if not self.stop_flag.is_set():
            self.on_idle()


class WakingConsumer(Consumer):  # type: ignore[misc]
    """huey's consumer with :class:`WakingConsumerThread` threads."""

    def __init__(
        self, huey: Any, *, wake: threading.Event | None, on_idle: Callable[[], None], **kw: Any
    ) -> None:
        self._wake, self._on_idle = wake, on_idle
        super().__init__(huey, **kw)

    def _create_worker(self) -> WakingConsumerThread:
        thread = WakingConsumerThread(
            huey=self.huey,
            stop_flag=self.stop_flag,
            default_delay=self.default_delay,
            max_delay=self.max_delay,
            backoff=self.backoff,
            max_tasks=self.max_tasks,
        )
        thread.wake, thread.on_idle = self._wake, self._on_idle
        return thread
