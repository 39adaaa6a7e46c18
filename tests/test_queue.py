"""The run queue on SqliteHuey and on a real Redis: real workers, real kernels, no mocks.

The database is the truth and a queue message is only a run id: these tests check what a
message carries, that a second delivery of the same id executes nothing, that the queue's
depth and pending ids reflect what was dispatched, and (on Redis, which other processes can
write to) that messages not signed with the deployment's secret are refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from huey.serializer import Serializer, SignedSerializer

from jupyter_sched.config import Settings
from jupyter_sched.models import new_id
from jupyter_sched.queue import RunQueue
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_until

TRIVIAL = "tests/notebooks/trivial.ipynb"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite history database only: these tests vary the queue, not the database."""
    return f"sqlite:///{tmp_path / 'history.db'}"


@pytest.fixture
def service(settings: Settings, queue_url: str | None) -> Iterator[Service]:
    """A service whose queue is SqliteHuey (``queue_url`` None) or the test Redis."""
    service = Service.open(settings.replace(redis_url=queue_url, reconcile_seconds=60))
    yield service
    service.db.dispose()


@pytest.fixture
def qservice(service: Service) -> Service:
    return service


@pytest.fixture
def start_qworker(start_worker: Callable[..., Worker], ticker: Ticker) -> Callable[..., Worker]:
    """Start in-process workers, with the ticker running; all stop after the test."""
    return start_worker


def run_log(service: Service, run_id: str) -> str:
    text, _ = service.run_log(OWNER, run_id)
    return text


def consumers_alive(worker: Worker) -> bool:
    threads = [thread for c in worker._consumers for _, thread in c.worker_threads]
    return bool(threads) and all(thread.is_alive() for thread in threads)


def test_message_is_only_the_run_id_and_the_run_succeeds(
    qservice: Service, start_qworker: Callable[..., Worker]
) -> None:
    run = qservice.run_notebook(OWNER, TRIVIAL, {"x": 3})
    assert run.status == "queued"
    queue = qservice.queues["default"]
    # The ticker may have won the hand-over and still be writing the message.
    wait_until(lambda: queue.depth() == 1, what="message queued")
    tasks = queue.huey.pending()
    assert len(tasks) == 1
    task = tasks[0]
    assert task.args == (run.id,)
    assert task.kwargs == {}
    assert task.id == run.id
    # Nothing else of the run travels: not the notebook, not its parameters.
    raw = queue.huey.storage.enqueued_items()
    assert len(raw) == 1
    assert b"trivial" not in raw[0] and b"tests/notebooks" not in raw[0]

    start_qworker()
    done = wait_for_run(qservice, run.id)
    assert done.status == "succeeded", done.error
    assert done.started_at is not None and done.worker_id is not None
    output = qservice.run_output(OWNER, run.id).read_text()
    assert '"x = 3' in output  # the injected parameters cell
    assert '"6\\n"' in output  # print(x * 2)
    assert queue.depth() == 0


def test_duplicate_deliveries_execute_once(
    qservice: Service, start_qworker: Callable[..., Worker]
) -> None:
    run = qservice.run_notebook(OWNER, TRIVIAL, {"x": 4})
    queue = qservice.queues["default"]
    wait_until(lambda: queue.depth() == 1, what="message queued")  # maybe by the ticker
    # Two more deliveries while the run waits in the queue.
    qservice.queues.enqueue(run.id, "default")
    qservice.queues.enqueue(run.id, "default")
    assert [task.id for task in queue.huey.pending()] == [run.id] * 3
    assert queue.depth() == 3

    start_qworker()  # one consumer thread: messages are taken in order
    done = wait_for_run(qservice, run.id)
    assert done.status == "succeeded", done.error
    output = qservice.run_output(OWNER, run.id)
    written = (output.stat().st_mtime_ns, output.read_bytes())

    # One more delivery after it finished; a later run proves the worker got past it.
    qservice.queues.enqueue(run.id, "default")
    later = qservice.run_notebook(OWNER, TRIVIAL, {"x": 5})
    assert wait_for_run(qservice, later.id).status == "succeeded"
    assert queue.depth() == 0

    after = qservice.get_run(OWNER, run.id)
    assert after.status == "succeeded"
    assert (after.started_at, after.finished_at, after.worker_id) == (
        done.started_at,
        done.finished_at,
        done.worker_id,
    )
    log = run_log(qservice, run.id)
    assert log.count("starting kernel") == 1, log
    assert log.count("finished; output at") == 1, log
    assert (output.stat().st_mtime_ns, output.read_bytes()) == written


class _MakeDir:
    """A pickle that creates a directory when it is loaded: code run by a forged message."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def test_forged_redis_messages_are_refused(
    qservice: Service,
    queue_url: str | None,
    start_qworker: Callable[..., Worker],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if queue_url is None:
        pytest.skip("only Redis takes messages from other processes; SqliteHuey is a local file")
    caplog.set_level(logging.ERROR, logger="jupyter_sched.worker")
    target = qservice.run_notebook(OWNER, TRIVIAL, {"x": 6}, dispatch=False)
    queue = qservice.queues["default"]
    assert queue.depth() == 0
    storage = queue.huey.storage
    message = queue.huey._registry.create_message(queue._task.s(target.id, id=target.id))
    wrong = SignedSerializer(secret="not-the-secret", salt="jupyter_sched")
    marker = tmp_path / "pwned"
    forged = [
        Serializer().serialize(message),  # huey's default, unsigned
        wrong.serialize(message),  # signed with the wrong secret
        Serializer().serialize(_MakeDir(marker)),  # code to run on load, unsigned
        wrong.serialize(_MakeDir(marker)),  # ... and signed with the wrong secret
    ]
    for data in forged:
        storage.enqueue(data)  # raw bytes, as anyone with access to Redis could
    assert queue.depth() == len(forged)
    assert queue.pending_ids() == set()  # not readable with the deployment's key either

    worker = start_qworker()

    def every_forged_message_taken() -> bool:
        run = qservice.get_run(OWNER, target.id)  # none of them started it meanwhile
        assert run.status == "queued" and run.started_at is None, run
        return queue.depth() == 0 and storage.conn.llen(queue.set_aside_key) == len(forged)

    wait_until(every_forged_message_taken, 30, "the worker took the forged messages")
    # The worker took every forged message and set it aside, unread and kept as it came.
    assert sorted(storage.conn.lrange(queue.set_aside_key, 0, -1)) == sorted(forged)
    assert not marker.exists()
    refused = [r for r in caplog.records if "set aside" in r.getMessage()]
    assert len(refused) == len(forged)
    assert consumers_alive(worker)

    legit = qservice.run_notebook(OWNER, TRIVIAL, {"x": 7})
    assert wait_for_run(qservice, legit.id).status == "succeeded"
    run = qservice.get_run(OWNER, target.id)
    assert run.status == "queued" and run.started_at is None

    # Control: the very message refused above is obeyed once signed with the right key.
    storage.enqueue(queue.huey.serializer.serialize(message))
    assert wait_for_run(qservice, target.id).status == "succeeded"


def test_depth_and_pending_ids(qservice: Service, start_qworker: Callable[..., Worker]) -> None:
    queue = qservice.queues["default"]
    # Another process's view of the same queue, e.g. a reconciler.
    other = RunQueue(qservice.settings, "default")
    assert queue.depth() == other.depth() == 0
    assert queue.pending_ids() == other.pending_ids() == set()

    first = qservice.run_notebook(OWNER, TRIVIAL, {"x": 1})
    second = qservice.run_notebook(OWNER, TRIVIAL, {"x": 2})
    held = qservice.run_notebook(OWNER, TRIVIAL, {"x": 3}, dispatch=False)
    assert queue.depth() == other.depth() == 2
    assert queue.pending_ids() == other.pending_ids() == {first.id, second.id}
    assert held.id not in queue.pending_ids()
    assert queue.pending_ids(limit=1) == {first.id}  # the next to be taken
    assert RunQueue(qservice.settings, "other").depth() == 0

    start_qworker()
    for run_id in (first.id, second.id):
        assert wait_for_run(qservice, run_id).status == "succeeded"
    wait_until(lambda: queue.depth() == 0)
    assert queue.pending_ids() == other.pending_ids() == set()
    assert qservice.get_run(OWNER, held.id).status == "queued"


def test_many_runs_enqueued_at_once_are_the_messages_huey_makes(qservice: Service) -> None:
    queue = qservice.queues["default"]
    queue.flush()
    items = [(new_id(), 0), (new_id(), 5), (new_id(), 0), ("not-a-ulid", 2), (new_id(), 5)]
    queue.enqueue_many(items)
    assert queue.pending_ids() == {run_id for run_id, _ in items}
    taken = [queue.huey.dequeue() for _ in items]
    assert queue.huey.dequeue() is None
    # highest priority first, then in the order enqueued
    expected = sorted(items, key=lambda item: -item[1])
    assert [(task.id, task.priority or 0) for task in taken] == expected
    for task in taken:
        assert task.args == (task.id,) and task.kwargs == {}
        assert task.name == queue._task.task_class.__name__
    # the same as a message of huey's own enqueue
    single = new_id()
    queue.enqueue(single, priority=5)
    own = queue.huey.dequeue()
    queue.enqueue_many([(single, 5)])
    ours = queue.huey.dequeue()
    assert (ours.id, ours.args, ours.priority) == (own.id, own.args, own.priority)
    assert ours.name == own.name
