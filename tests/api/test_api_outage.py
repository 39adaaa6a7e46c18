"""The REST API while the history database is away: 503 with ``Retry-After`` and a
message saying so, a health check that a probe notices, two log lines per outage, and a
server started during an outage that connects by itself when the database appears."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from jupyter_sched.app import SchedApp
from tests.conftest import durable_database
from tests.servers import PostgresServer

from .conftest import Api, eventually

pytestmark = pytest.mark.postgres

OUTAGE_STARTS = "history database is unavailable"
OUTAGE_ENDS = "history database is available again"
#: The server's threads that reach the database without a request (names jupyter-sched-*).
BACKGROUND = ("ticker", "metrics")


class Records(logging.Handler):
    """Every log record of the server process, once each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) not in self._seen:
            self._seen.add(id(record))
            self.records.append(record)


@pytest.fixture
def records(jp_serverapp: Any) -> Iterator[Records]:
    handler = Records()
    loggers = {logging.getLogger(), logging.getLogger("jupyter_sched"), jp_serverapp.log}
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


async def unavailable(api: Api, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A 503 answer in the API's error shape, with ``Retry-After``."""
    response = await api.request(method, path, body)
    text = response.body.decode() if response.body else ""
    assert response.code == 503, f"{method} {path}: {response.code} {text}"
    assert int(response.headers["Retry-After"]) > 0
    reply = json.loads(text)
    if path != "health":
        assert set(reply) == {"message", "reason", "field"}
        assert reply["reason"] == "unavailable" and OUTAGE_STARTS in reply["message"]
    return reply  # type: ignore[no-any-return]


class TestDatabaseOutage:
    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any], own_pg: PostgresServer) -> dict[str, Any]:
        return {**sched_config, "db_url": durable_database(own_pg)}

    async def test_the_api_answers_503_until_the_database_answers(
        self, api: Api, sched_app: SchedApp, own_pg: PostgresServer, records: Records
    ) -> None:
        job = await api.json("POST", "jobs", {"name": "a", "notebook": "trivial.ipynb"}, status=201)
        failed_in: list[str] = []  # the server's threads whose database calls went unanswered

        def failed(_: Any) -> None:
            failed_in.append(threading.current_thread().name)

        event.listen(sched_app.service.db.engine, "handle_error", failed)
        start = len(records.records)
        own_pg.kill()

        calls = [
            ("GET", "jobs", None),
            ("GET", f"jobs/{job['id']}", None),
            ("POST", "jobs", {"name": "b", "notebook": "trivial.ipynb"}),
            ("POST", f"jobs/{job['id']}/run", None),
            ("GET", "runs", None),
        ]
        for method, path, body in calls:
            await unavailable(api, method, path, body)
        health = await unavailable(api, "GET", "health")
        assert (health["status"], health["database"], health["load"]) == (
            "degraded", "unavailable", None,
        )  # fmt: skip

        async def everyone_kept_trying() -> bool:
            # A panel polling, a probe probing, until the ticker and the metrics have tried
            # again and again too (each logging nothing more: checked below).
            await unavailable(api, "GET", "jobs")
            await unavailable(api, "GET", "health")
            return all(failed_in.count(f"jupyter-sched-{name}") >= 3 for name in BACKGROUND)

        await eventually(everyone_kept_trying, timeout=30, interval=0.25)
        event.remove(sched_app.service.db.engine, "handle_error", failed)
        during = len(records.records)
        own_pg.start()

        async def answers() -> bool:
            response = await api.request("GET", "jobs")
            return response.code == 200

        await eventually(answers, timeout=30)
        health = await api.json("GET", "health")
        assert (health["status"], health["database"]) == ("ok", "ok")
        await eventually(
            lambda: _async(any(OUTAGE_ENDS in r.getMessage() for r in records.records[start:]))
        )

        window = records.records[start:]
        outage = records.records[start:during]
        print(
            f"figure: API server: {sum(r.levelno >= logging.INFO for r in outage)} log records "
            f"at info or above during the outage ({len(outage)} with debug), of which "
            f"{sum(r.levelno >= logging.WARNING for r in outage)} at warning or above"
        )
        messages = [r.getMessage() for r in window]
        assert sum(OUTAGE_STARTS in m for m in messages) == 1, messages
        assert sum(OUTAGE_ENDS in m for m in messages) == 1, messages
        loud = [m for r, m in zip(window, messages, strict=True) if r.levelno >= logging.WARNING]
        assert len(loud) == 2, loud
        assert not [r for r in window if r.exc_info], "no traceback"


async def _async(value: Any) -> Any:
    return value


@pytest.mark.slow
class TestServerStartedDuringAnOutage:
    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any], own_pg: PostgresServer) -> dict[str, Any]:
        url = durable_database(own_pg)  # created, not migrated yet
        own_pg.kill()
        return {**sched_config, "db_url": url, "embedded_workers": True, "worker_concurrency": 1}

    async def test_it_answers_503_then_connects_and_schedules(
        self, api: Api, own_pg: PostgresServer
    ) -> None:
        await unavailable(api, "GET", "jobs")
        await unavailable(api, "POST", "jobs", {"name": "a", "notebook": "trivial.ipynb"})
        health = await unavailable(api, "GET", "health")
        assert (health["status"], health["database"]) == ("degraded", "unavailable")
        assert (health["ticker"], health["embedded_worker"]) == ("stopped", "stopped")

        own_pg.start()

        async def healthy() -> bool:
            response = await api.request("GET", "health")
            return response.code == 200

        await eventually(healthy, timeout=60)
        health = await api.json("GET", "health")
        assert (health["ticker"], health["embedded_worker"]) == ("running", "running")
        job = await api.json("POST", "jobs", {"name": "a", "notebook": "trivial.ipynb"}, status=201)
        run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
        assert (await api.wait_run(run["id"]))["status"] == "succeeded"
