"""A user's server on a hub forwards the scheduler's API to the hub's scheduler service.

In hub mode (``SchedApp.service_url`` set) the extension holds no scheduler credential
and runs no scheduler: every ``{base_url}sched/api/<path>`` request that the user's server
authenticates and authorizes is sent on to ``<service_url>sched/api/<path>`` with the
server's own hub token (``$JUPYTERHUB_API_TOKEN``, which acts for the server's owner), and
the service's answer is returned as it is. The Lab panel works unchanged.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .handlers import AUTH_RESOURCE

if TYPE_CHECKING:
    from .app import SchedApp

__all__ = ["ForwardHandler", "forward_handlers"]

#: Headers of the service's answer passed back to the browser.
PASSED_HEADERS = ("Content-Type", "Content-Disposition", "Retry-After", "Location", "ETag")
#: Seconds the service gets to answer one request.
FORWARD_TIMEOUT = 120.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ForwardHandler(APIHandler):
    """Sends a ``sched/api`` request on to the hub's scheduler service."""

    auth_resource = AUTH_RESOURCE

    @property
    def sched(self) -> SchedApp:
        return cast("SchedApp", self.settings["jupyter_sched"])

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def patch(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        await self._forward(path)

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        await self._forward(path)

    async def _forward(self, path: str) -> None:
        method = self.request.method or "GET"
        base = self.sched.service_url or ""
        url = f"{base.rstrip('/')}/sched/api/{path}"
        if self.request.query:
            url += f"?{self.request.query}"
        headers = {"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"}
        if "Content-Type" in self.request.headers:
            headers["Content-Type"] = self.request.headers["Content-Type"]
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=self.request.body if method in _BODY_METHODS else None,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            request_timeout=FORWARD_TIMEOUT,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code == 599:  # no answer at all
            self.set_status(503)
            self.set_header("Retry-After", "5")
            self.finish(
                json.dumps(
                    {
                        "message": "the hub's scheduler service does not answer "
                        f"({response.error})",
                        "reason": "unavailable",
                        "field": None,
                    }
                )
            )
            return
        self.set_status(response.code)
        for name in PASSED_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        if response.code in (204, 304):
            self.finish()
            return
        self.finish(response.body or b"")


def forward_handlers() -> list[tuple[str, type[APIHandler]]]:
    """The one route of a user's server in hub mode: everything under ``sched/api/``."""
    return [(r"/sched/api/(.*)", ForwardHandler)]
