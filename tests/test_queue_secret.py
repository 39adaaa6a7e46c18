"""The secret that signs queue messages on Redis: every process of a deployment checks it.

A worker started with the wrong ``JUPYTER_SCHED_SECRET`` used to take messages, fail to
verify them and drop them while it showed as a healthy worker. Now a process whose secret
is not the deployment's refuses to start; a message that fails verification anyway is put
back (by a worker whose secret changed) or set aside (a forgery), never executed and never
lost: the run it names still runs, on a worker with the right secret.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_sched.config import Settings
from jupyter_sched.errors import SecretMismatch
from jupyter_sched.queue import Queues
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker
from jupyter_sched.worker import Worker

from .conftest import OWNER, REPO, wait_for_run, wait_until
from .servers import RedisServer

pytestmark = pytest.mark.redis

TRIVIAL = "tests/notebooks/trivial.ipynb"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite: these tests vary the secret, not the database."""
    return f"sqlite:///{tmp_path / 'history.db'}"


@pytest.fixture
def settings(settings: Settings, redis_srv: RedisServer) -> Settings:
    redis_srv.flush()
    return settings.replace(redis_url=redis_srv.url, reconcile_seconds=1.0)


def cli(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_sched.cli", *args],
        env={**os.environ, **settings.worker_environ()},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_worker_with_another_secret_refuses_to_start(service: Service) -> None:
    run = service.run_notebook(OWNER, TRIVIAL, {"x": 1})
    queue = service.queues["default"]
    assert queue.depth() == 1
    wrong = service.settings.replace(secret="not-the-deployment-secret")

    worker = Worker(wrong, service.db)
    with pytest.raises(SecretMismatch, match="JUPYTER_SCHED_SECRET of this process is not"):
        worker.start()
    assert service.workers() == []  # never shown as a worker
    with pytest.raises(SecretMismatch):  # nor does a server or a command start with it
        Service.open(wrong)

    process = cli(wrong, "worker")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("Error: JUPYTER_SCHED_SECRET of this process is not the secret")
    assert "forget-secret" in line
    # Nothing was taken from the queue.
    assert queue.depth() == 1 and queue.pending_ids() == {run.id}
    assert service.get_run(OWNER, run.id).status == "queued"


def test_an_unverifiable_message_is_set_aside_and_its_run_still_runs(
    service: Service,
    start_worker: Callable[..., Worker],
    ticker: Ticker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="jupyter_sched.worker")
    # A run handed over in the database, whose message was signed with another key: no
    # worker of the deployment can read it (a forgery, or a process with a wrong secret).
    run = service.run_notebook(OWNER, TRIVIAL, {"x": 2}, dispatch=False)
    Queues(service.settings.replace(secret="another-key"))["default"].enqueue(run.id)
    queue = service.queues["default"]
    forged = queue.huey.storage.enqueued_items()
    assert len(forged) == 1

    start_worker()
    done = wait_for_run(service, run.id, timeout=120)
    assert done.status == "succeeded" and done.attempt == 1
    # The unreadable message was kept aside, not executed and not destroyed ...
    assert queue.set_aside_count() == 1
    assert queue.huey.storage.conn.lrange(queue.set_aside_key, 0, -1) == forged
    # ... and said so; the run ran once, from the message the reconciler sent again.
    (record,) = [r for r in caplog.records if "set aside" in r.getMessage()]
    assert queue.set_aside_key in record.getMessage()
    log, _ = service.run_log(OWNER, run.id)
    assert log.count("starting kernel") == 1, log


def test_a_worker_whose_secret_is_no_longer_the_deployments_stops_and_loses_nothing(
    service: Service,
) -> None:
    old = cli(service.settings, "-v", "worker", "-c", "1")
    try:
        wait_until(lambda: len(service.workers()) == 1, 120, "worker up")
        # The deployment changes its secret on purpose; the old worker is not restarted.
        new_settings = service.settings.replace(secret="the-new-secret")
        forget = cli(new_settings, "db", "forget-secret")
        assert forget.communicate(timeout=300)[0].startswith("forgotten")
        rekeyed = Service.open(new_settings)
        run = rekeyed.run_notebook(OWNER, TRIVIAL, {"x": 3})
        _, err = old.communicate(timeout=300)
    finally:
        if old.poll() is None:
            old.kill()
            old.communicate()
    assert old.returncode == 1, err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("Error: JUPYTER_SCHED_SECRET of this process is not the secret")
    )
    assert "stops consuming" in err
    # The message went back to the queue: a worker with the new secret runs the run.
    assert rekeyed.get_run(OWNER, run.id).status == "queued"
    assert rekeyed.queues["default"].pending_ids() == {run.id}
    new = Worker(rekeyed.settings, rekeyed.db)
    new.start()
    try:
        assert wait_for_run(rekeyed, run.id, timeout=120).status == "succeeded"
    finally:
        new.stop(grace_seconds=0)
        rekeyed.db.dispose()
