"""Fixtures of the REST API tests: a real jupyter_server with the extension, through
pytest-jupyter (``jp_serverapp``, ``jp_fetch``).

pytest-jupyter's fixtures are imported here rather than registered as a plugin so that
its autouse fixtures (an event loop and a server clean-up per test) stay in this folder.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures for this folder only
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from jupyter_sched.app import SchedApp
from tests.conftest import PATIENCE

REPO = Path(__file__).resolve().parents[2]
API = "sched/api"
FINAL = {"succeeded", "failed", "timed_out", "cancelled", "lost", "skipped"}


@pytest.fixture
def sched_config(tmp_path: Path) -> dict[str, Any]:
    """``c.SchedApp`` of the test server; a module overrides this fixture to change it."""
    return {
        "data_dir": str(tmp_path / "sched-data"),
        "embedded_workers": False,
        "tick_seconds": 0.2,
        "heartbeat_seconds": 0.5,
        "lease_seconds": 5.0,
        "reconcile_seconds": 2.0,
        "metrics_seconds": 0.3,
        "worker_stop_grace_seconds": 1.0,
        "worker_concurrency": 2,
        "max_body_bytes": 64 * 1024,
    }


@pytest.fixture
def server_config() -> dict[str, Any]:
    """Extra ``c.ServerApp`` settings (identity provider, authorizer) of the test server."""
    return {}


@pytest.fixture
def jp_server_config(sched_config: dict[str, Any], server_config: dict[str, Any]) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"jupyter_sched": True}, **server_config},
            "SchedApp": sched_config,
        }
    )


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    """The server root: the test notebooks at the top, the example ones in ``reports/``."""
    root = tmp_path / "root"
    (root / "reports").mkdir(parents=True)
    for notebook in (REPO / "tests" / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / "reports" / notebook.name)
    return root


@pytest.fixture
def sched_app(jp_serverapp: Any) -> SchedApp:
    """The extension inside the test server."""
    app = jp_serverapp.web_app.settings["jupyter_sched"]
    assert isinstance(app, SchedApp)
    return app


class Api:
    """A small client of the scheduler's REST API on the test server.

    Query strings are sent as given (``path?a=b``) or encoded from ``params``.
    """

    def __init__(self, client: Any, base_url: str, headers: dict[str, str] | None = None) -> None:
        self._client = client
        self.base_url = base_url
        self.headers = headers or {}

    def as_user(self, headers: dict[str, str]) -> Api:
        return Api(self._client, self.base_url, headers)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
    ) -> HTTPResponse:
        if raw is None and body is not None:
            raw = json.dumps(body)
        if raw is None and method in ("POST", "PATCH", "PUT"):
            raw = b""
        url = f"{self.base_url}{API}/{path}"
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        response = await self._client.fetch(
            url,
            method=method,
            body=raw,
            headers={**self.headers, **(headers or {})},
            raise_error=False,
            request_timeout=60,
        )
        assert isinstance(response, HTTPResponse)
        return response

    async def json(
        self, method: str, path: str, body: Any = None, *, status: int = 200, **kwargs: Any
    ) -> Any:
        response = await self.request(method, path, body, **kwargs)
        text = response.body.decode() if response.body else ""
        assert response.code == status, f"{method} {path}: {response.code} {text}"
        return json.loads(text) if text else None

    async def error(
        self, method: str, path: str, body: Any = None, *, status: int, **kwargs: Any
    ) -> dict[str, Any]:
        """An error response: checks the status and the ``{message, reason, field}`` shape."""
        response = await self.request(method, path, body, **kwargs)
        text = response.body.decode() if response.body else ""
        assert response.code == status, f"{method} {path}: {response.code} {text}"
        assert response.headers["Content-Type"].startswith("application/json")
        error = json.loads(text)
        assert set(error) == {"message", "reason", "field"}, error
        assert error["message"]
        return error  # type: ignore[no-any-return]

    async def wait_run(self, run_id: str, timeout: float = 90.0, until: set[str] = FINAL) -> Any:
        """Poll a run until its status is in ``until``; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            run = await self.json("GET", f"runs/{run_id}")
            if run["status"] in until:
                return run
            assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
            await asyncio.sleep(0.1)


@pytest.fixture
def api(http_server_client: Any, jp_base_url: str, jp_auth_header: dict[str, str]) -> Api:
    """The API as the server's token holder."""
    return Api(http_server_client, jp_base_url, dict(jp_auth_header))


async def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Await ``check()`` until it returns something truthy (for up to ``timeout`` times
    the suite's ``PATIENCE`` seconds); returns that."""
    deadline = time.monotonic() + timeout * PATIENCE
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)
