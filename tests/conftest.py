"""Shared fixtures: real databases, real queues, real workers and kernels.

Store and engine tests run on SQLite and on a PostgreSQL server that the session starts;
queue tests run on SqliteHuey and on a Redis server that the session starts.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from jupyter_sched.config import Settings
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker
from jupyter_sched.worker import Worker

from .servers import PostgresServer, RedisServer, postgres_server, redis_server

REPO = Path(__file__).resolve().parent.parent
OWNER = "alice"

#: Intervals short enough for tests to watch leases expire.
FAST = {
    "tick_seconds": 0.2,
    "heartbeat_seconds": 0.5,
    "lease_seconds": 3.0,
    "watch_seconds": 0.2,
    "kill_grace_seconds": 0.5,
    "poll_max_seconds": 0.05,
    "reconcile_seconds": 2.0,
}


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop and start again (a
    database outage) without disturbing the session's server."""
    with postgres_server() as server:
        yield server


def durable_database(server: PostgresServer) -> str:
    """A new database on ``server`` whose commits survive ``server.kill()`` (the test
    servers run with ``synchronous_commit=off``, which may lose the last ones)."""
    url = server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres",
                         dbname="postgres", autocommit=True) as conn:  # fmt: skip
        conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = on")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty history database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    server: PostgresServer = request.getfixturevalue("pg")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the embedded SqliteHuey queue, or the URL of the test Redis."""
    if request.param == "sqlite":
        return None
    server: RedisServer = request.getfixturevalue("redis_srv")
    server.flush()
    return server.url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db_url=db_url,
        root_dir=REPO,
        secret="test-secret",
        **FAST,  # type: ignore[arg-type]
    )


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    service = Service.open(settings)
    yield service
    service.db.dispose()


@pytest.fixture
def start_worker(service: Service) -> Iterator[Callable[..., Worker]]:
    """Start in-process workers on the service's deployment; all stop after the test."""
    workers: list[Worker] = []

    def start(**kwargs: object) -> Worker:
        worker = Worker(service.settings, service.db, **kwargs)  # type: ignore[arg-type]
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(grace_seconds=0)


@pytest.fixture
def ticker(service: Service) -> Iterator[Ticker]:
    """The service's ticker, running in a thread (as inside the server extension)."""
    ticker = Ticker(service.db, service.queues, service.settings)
    service.on_change = ticker.wake
    ticker.start()
    yield ticker
    ticker.stop()


@pytest.fixture
def worker(start_worker: Callable[..., Worker], ticker: Ticker) -> Worker:
    """One in-process worker, with the ticker running."""
    return start_worker()


#: Seconds a worker subprocess may take to import and register on a loaded machine (a
#: deadline for a hang, not a speed figure: it registers in ~2 s on an idle one).
WORKER_START_DEADLINE = 180.0


def wait_for_worker_process(service: Service, proc: subprocess.Popen[Any], log: Path) -> None:
    """Wait until worker subprocess ``proc`` has registered; fail with its log if it exits."""

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}:\n{log.read_text()}")
        return any(w["pid"] == proc.pid for w in service.workers())

    wait_until(up, WORKER_START_DEADLINE, "worker up")


#: How many times longer than a deadline says the waits below go on before calling something
#: hung. Deadlines in the tests are what an operation needs on an idle 2-core machine; the
#: suite must pass with two CPU hogs beside it (load 8-30), where processes start and
#: notebooks run several times slower. A deadline only catches a hang: it can be generous.
PATIENCE = 4.0


def wait_until(
    check: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> float:
    """Poll ``check`` until it returns something true (for up to ``timeout`` times
    :data:`PATIENCE` seconds); returns the seconds it took."""
    start, limit = time.monotonic(), timeout * PATIENCE
    while not check():
        if time.monotonic() - start > limit:
            raise AssertionError(f"{what}: not within {limit:g}s")
        time.sleep(0.05)
    return time.monotonic() - start


def wait_for_run(service: Service, run_id: str, timeout: float = 60.0, owner: str = OWNER):
    """Poll a run until it reaches a final state (for up to ``timeout`` times
    :data:`PATIENCE` seconds); returns it."""
    limit = timeout * PATIENCE
    deadline = time.monotonic() + limit
    while True:
        run = service.get_run(owner, run_id)
        if run.status not in ("queued", "running"):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {limit:g}s")
        time.sleep(0.05)
