"""The huey queue that carries run ids from the ticker and the service to the workers.

The database is the truth and the queue is a hint: a message is only a run id (also used
as the huey task id). Losing a message delays a run until the reconciler re-enqueues it;
delivering one twice does nothing, because a worker claims a run with a conditional update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from huey import PriorityRedisHuey, SqliteHuey
from huey.api import Huey, TaskWrapper
from huey.serializer import SignedSerializer

from .config import Settings


def _unbound_execute(run_id: str) -> None:
    raise RuntimeError(f"run {run_id} was delivered to a process that is not a worker")


def _task_function(handler: Callable[[str], Any]) -> Callable[[str], Any]:
    # huey names a task after its function's module, so producers and workers must
    # register a function defined here, whoever handles it.
    def execute_run(run_id: str) -> Any:
        return handler(run_id)

    return execute_run


class RunQueue:
    """One named huey queue (SqliteHuey by default, Redis with signed messages).

    Both storages honour priorities (Redis through a sorted set, so Redis 5 or newer).
    """

    def __init__(
        self,
        settings: Settings,
        name: str = "default",
        execute: Callable[[str], Any] = _unbound_execute,
    ) -> None:
        self.name = name
        huey_name = f"jupyter_sched.{name}"
        if settings.redis_url:
            self.huey: Huey = PriorityRedisHuey(
                huey_name,
                url=settings.redis_url,
                results=False,
                serializer=SignedSerializer(secret=settings.queue_secret(), salt="jupyter_sched"),
            )
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(
                huey_name,
                filename=str(settings.data_dir / "queue.db"),
                results=False,
                timeout=30,
            )
        self._task: TaskWrapper = self.huey.task()(_task_function(execute))

    def enqueue(self, run_id: str, priority: int = 0) -> None:
        """Put a run id on the queue."""
        self.huey.enqueue(self._task.s(run_id, id=run_id, priority=priority or None))

    def pending_ids(self, limit: int | None = None) -> set[str]:
        """Run ids waiting in the queue (for reconciliation)."""
        return {task.id for task in self.huey.pending(limit)}

    def depth(self) -> int:
        """Messages waiting in the queue."""
        return int(self.huey.pending_count())

    def flush(self) -> None:
        """Drop every waiting message (tests and ``jupyter sched db reset``)."""
        self.huey.flush()


class Queues:
    """The queues of a deployment by name, created on first use."""

    def __init__(self, settings: Settings, execute: Callable[[str], Any] = _unbound_execute):
        self.settings = settings
        self._execute = execute
        self._queues: dict[str, RunQueue] = {}

    def __getitem__(self, name: str) -> RunQueue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = RunQueue(self.settings, name, self._execute)
        return queue

    def enqueue(self, run_id: str, queue: str, priority: int = 0) -> None:
        """Put ``run_id`` on queue ``queue``."""
        self[queue].enqueue(run_id, priority)
