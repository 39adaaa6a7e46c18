"""The huey queue that carries run ids from the ticker and the service to the workers.

The database is the truth and the queue is a hint: a message is only a run id (also used
as the huey task id). Losing a message delays a run until the reconciler re-enqueues it;
delivering one twice does nothing, because a worker claims a run with a conditional update.

On Redis, messages are signed with the deployment's secret. Every process checks its
secret against a probe the first one recorded in the database (:func:`check_secret`), so
a process with another secret refuses to start instead of sending or taking messages
nobody can read; a message that still fails verification is set aside, never executed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.exc import IntegrityError

from .clock import utcnow
from .config import ENV_SECRET, Settings, redact_url
from .db import Database
from .errors import SecretMismatch
from .hueyload import load_huey, load_huey_redis
from .models import DeploymentValue
from .wakeup import PREPARE, WAKE, ring

if TYPE_CHECKING:
    # huey is imported when a queue is first used (listing jobs does not need it), and
    # through .hueyload, without the Redis client unless a Redis queue is made.
    from huey.api import Huey, TaskWrapper

log = logging.getLogger(__name__)

#: The deployment value that holds the signing probe: a nonce and its HMAC under the secret.
SECRET_PROBE = "queue_secret_probe"  # noqa: S105 - a row name, not a secret
#: Unreadable messages kept per queue for an administrator to look at.
SET_ASIDE_LIMIT = 1000


def check_secret(db: Database, settings: Settings) -> None:
    """Raise :class:`SecretMismatch` unless this process signs queue messages with the
    deployment's secret (nothing to check on the embedded queue, which signs nothing).

    The first process to check records a probe; the database keeps it (Redis may restart
    empty), so a process started later with another secret cannot become the reference.
    """
    if not settings.redis_url:
        return
    secret = settings.queue_secret()
    with db.read() as session:
        stored = session.get(DeploymentValue, SECRET_PROBE)
        probe = stored.value if stored is not None else None
    if probe is None:
        nonce = secrets.token_hex(16)
        probe = f"{nonce}:{_probe_digest(secret, nonce)}"
        try:
            with db.write() as session:
                session.add(DeploymentValue(name=SECRET_PROBE, value=probe, created_at=utcnow()))
        except IntegrityError:  # another process recorded its probe first
            with db.read() as session:
                stored = session.get(DeploymentValue, SECRET_PROBE)
                assert stored is not None
                probe = stored.value
    nonce, _, digest = probe.partition(":")
    if not hmac.compare_digest(digest, _probe_digest(secret, nonce)):
        raise SecretMismatch(
            f"{ENV_SECRET} of this process is not the secret that signs the deployment's "
            f"queue messages on {redact_url(settings.redis_url)}: its messages could not be "
            "read by the other processes, nor theirs by it; not starting. Give every server "
            "and worker of the deployment the same secret (after changing it on purpose, "
            "run `jupyter sched db forget-secret` once)"
        )


def forget_secret(db: Database) -> bool:
    """Drop the deployment's signing probe (after its secret was changed on purpose): the
    next process to start records its own. Returns whether there was one."""
    with db.write() as session:
        stored = session.get(DeploymentValue, SECRET_PROBE)
        if stored is not None:
            session.delete(stored)
        return stored is not None


def _probe_digest(secret: str, nonce: str) -> str:
    message = f"jupyter_sched queue secret probe {nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@functools.cache
def _verifying_redis_huey() -> type[Huey]:
    load_huey_redis()
    from huey import PriorityRedisHuey
    from huey.api import Task

    class VerifyingRedisHuey(PriorityRedisHuey):  # type: ignore[misc]
        """Redis queue that hands a message failing verification to ``on_unreadable``
        instead of dropping it (huey would log it and lose it)."""

        on_unreadable: Callable[[bytes], None] | None = None

        def dequeue(self) -> Task | None:
            data = self.storage.dequeue()
            if data is None:
                return None
            try:
                return self.deserialize_task(data)
            except Exception:  # a bad signature, or a payload that is not a task
                if self.on_unreadable is None:
                    raise
                self.on_unreadable(data)
                return None

    return VerifyingRedisHuey


def _unbound_execute(run_id: str) -> None:
    raise RuntimeError(f"run {run_id} was delivered to a process that is not a worker")


def _task_function(handler: Callable[[str], Any]) -> Callable[[str], Any]:
    # huey names a task after its function's module, so producers and workers must
    # register a function defined here, whoever handles it.
    def execute_run(run_id: str) -> Any:
        return handler(run_id)

    return execute_run


#: Where a run's id goes in an embedded queue's message pattern: a ULID's length, and no
#: ULID (``~`` is no base-32 digit).
_PLACEHOLDER = "~" * 26
_PLACEHOLDER_BYTES = _PLACEHOLDER.encode("ascii")


class RunQueue:
    """One named huey queue (SqliteHuey by default, Redis with signed messages).

    Both storages honour priorities (Redis through a sorted set, so Redis 5 or newer).
    """

    def __init__(
        self,
        settings: Settings,
        name: str = "default",
        execute: Callable[[str], Any] = _unbound_execute,
        on_unreadable: Callable[[RunQueue, bytes], None] | None = None,
    ) -> None:
        self.name = name
        #: Where the embedded queue's workers listen for wake-ups (``None`` on Redis,
        #: whose consumers block on the queue itself).
        self.wake_data_dir = None if settings.redis_url else settings.data_dir
        huey_name = f"jupyter_sched.{name}"
        if settings.redis_url:
            from huey.serializer import SignedSerializer

            self.huey: Huey = _verifying_redis_huey()(
                huey_name,
                url=settings.redis_url,
                results=False,
                serializer=SignedSerializer(secret=settings.queue_secret(), salt="jupyter_sched"),
            )
            if on_unreadable is not None:
                self.huey.on_unreadable = lambda data: on_unreadable(self, data)
        else:
            load_huey()
            from huey import SqliteHuey

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
        self.wake()

    def wake(self) -> None:
        """Wake the embedded queue's workers now rather than at their next poll."""
        if self.wake_data_dir is not None:
            ring(self.wake_data_dir, WAKE + self.name.encode())

    def enqueue_many(self, items: list[tuple[str, int]]) -> None:
        """Put many ``(run id, priority)`` on the queue in one round trip: one pipeline
        on Redis, one transaction on SQLite (huey's own enqueue costs one of each per id).
        """
        if not items:
            return
        messages = list(zip(self._messages(items), (p or 0 for _, p in items), strict=True))
        storage = self.huey.storage
        if self.wake_data_dir is None:  # Redis
            # as huey's RedisPriorityQueue.enqueue: a time prefix keeps equal priorities in
            # order (a counter keeps them apart within the batch), scores are -priority
            start = int(time.time() * 1e6)
            pipeline = storage.conn.pipeline(transaction=False)
            for offset, (data, priority) in enumerate(messages):
                prefix = struct.pack(">Q", start + offset)
                pipeline.zadd(storage.queue_key, {prefix + data: -priority})
            pipeline.execute()
        else:
            with storage.db(commit=True) as cursor:
                cursor.executemany(
                    "insert into task (queue, data, priority) values (?, ?, ?)",
                    [
                        (storage.name, storage.to_blob(data), priority)
                        for data, priority in messages
                    ],
                )
            self.wake()

    def _messages(self, items: list[tuple[str, int]]) -> list[bytes]:
        """The serialized messages of ``(run id, priority)`` items, as huey makes them.

        One message is made, then copied per run: what differs between two runs'
        messages is the id (also the argument) and the priority. On the embedded queue
        (plain pickles, not signed) one message per priority is pickled with a
        placeholder id, and each run's id written over it: ids have one length, so the
        pickle stays valid, and pickling costs more than the rest of an enqueue.
        """
        template = self.huey._registry.create_message(self._task.s("", id="template"))
        serialize = self.huey.serializer.serialize

        def pickled(run_id: str, priority: int) -> bytes:
            return cast(
                bytes,
                serialize(template._replace(id=run_id, args=(run_id,), priority=priority or None)),
            )

        if self.wake_data_dir is None:  # Redis: each message is signed
            return [pickled(run_id, priority) for run_id, priority in items]
        patterns: dict[int, bytes] = {}
        messages = []
        for run_id, priority in items:
            if len(run_id) != len(_PLACEHOLDER) or not run_id.isascii():
                messages.append(pickled(run_id, priority))
                continue
            pattern = patterns.get(priority)
            if pattern is None:
                pattern = patterns[priority] = pickled(_PLACEHOLDER, priority)
            messages.append(pattern.replace(_PLACEHOLDER_BYTES, run_id.encode("ascii")))
        return messages

    def pending_ids(self, limit: int | None = None) -> set[str]:
        """Run ids waiting in the queue (for reconciliation)."""
        # The messages' ids only: huey's pending() makes a task object of each message,
        # which costs more than the reconciler's database work for a long queue.
        deserialize = self.huey.serializer.deserialize
        ids = set()
        for data in self.huey.storage.enqueued_items(limit):
            try:
                ids.add(deserialize(data).id)
            except Exception:  # noqa: BLE001, S112 - unreadable: not a run waiting here
                continue
        return ids

    def depth(self) -> int:
        """Messages waiting in the queue."""
        return int(self.huey.pending_count())

    def flush(self) -> None:
        """Drop every waiting message (tests and ``jupyter sched db reset``)."""
        self.huey.flush()

    @property
    def set_aside_key(self) -> str:
        """The Redis list that keeps the messages of this queue that failed verification."""
        return f"{self.huey.name}.unverified"

    def put_back(self, data: bytes) -> None:
        """Return a message, as it was taken, to the queue (for a worker that can read it)."""
        self.huey.storage.enqueue(data)

    def set_aside(self, data: bytes) -> None:
        """Keep a message that failed verification out of the queue (the newest
        :data:`SET_ASIDE_LIMIT` are kept), so that it is neither executed nor lost."""
        conn = self.huey.storage.conn
        conn.lpush(self.set_aside_key, data)
        conn.ltrim(self.set_aside_key, 0, SET_ASIDE_LIMIT - 1)

    def set_aside_count(self) -> int:
        """Messages of this queue set aside (0 on the embedded queue, which signs nothing)."""
        if self.wake_data_dir is not None:
            return 0
        return int(self.huey.storage.conn.llen(self.set_aside_key))


class Queues:
    """The queues of a deployment by name, created on first use."""

    def __init__(
        self,
        settings: Settings,
        execute: Callable[[str], Any] = _unbound_execute,
        on_unreadable: Callable[[RunQueue, bytes], None] | None = None,
    ):
        self.settings = settings
        self._execute = execute
        self._on_unreadable = on_unreadable
        self._queues: dict[str, RunQueue] = {}

    def __getitem__(self, name: str) -> RunQueue:
        queue = self._queues.get(name)
        if queue is None:
            queue = RunQueue(self.settings, name, self._execute, self._on_unreadable)
            self._queues[name] = queue
        return queue

    def enqueue(self, run_id: str, queue: str, priority: int = 0) -> None:
        """Put ``run_id`` on queue ``queue``."""
        self[queue].enqueue(run_id, priority)

    def enqueue_many(self, queue: str, items: list[tuple[str, int]]) -> None:
        """Put many ``(run id, priority)`` on queue ``queue`` in one round trip."""
        self[queue].enqueue_many(items)

    def hint_run_soon(self) -> None:
        """Tell the embedded queue's workers that a run may be asked for soon (a user is
        in the scheduling dialog), so that they prepare a kernel; nothing on Redis."""
        if not self.settings.redis_url:
            ring(self.settings.data_dir, PREPARE)
