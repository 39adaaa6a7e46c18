"""A user's server on a hub forwards the scheduler's API to the hub's scheduler service.

In hub mode (``SchedApp.service_url`` set) the extension holds no scheduler credential
and runs no scheduler: every ``{base_url}sched/api/<path>`` request that the user's server
authenticates and authorizes is sent on to ``<service_url>sched/api/<path>`` with the
server's own hub token (``$JUPYTERHUB_API_TOKEN``, which acts for the server's owner), and
the service's answer is returned as it is. The Lab panel works unchanged.

The service does not read users' folders: what only the user's server can read, it hands
over. A request that makes the service check a notebook (creating a job, changing its
notebook or parameters, running it now, a backfill, running a notebook) carries the user's
copy of it (:mod:`jupyter_sched.handoff`), and a notebook's parameters are read here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .apihandler import SchedHandler
from .handoff import NOTEBOOK_FIELDS, HandedNotebook, encode, hand_over
from .notebooks import notebook_parameters, resolve_notebook
from .restmodels import ParametersQuery
from .schemas import NotebookParameters

__all__ = ["ForwardHandler", "forward_handlers"]

#: Headers of the service's answer passed back to the browser.
PASSED_HEADERS = ("Content-Type", "Content-Disposition", "Retry-After", "Location", "ETag")
#: Seconds the service gets to answer one request.
FORWARD_TIMEOUT = 120.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: ``jobs/<id>`` and the calls on a job that check its notebook.
_JOB_CALL = re.compile(r"jobs/([^/]+)(/run|/backfill)?")


class ForwardHandler(SchedHandler):
    """Sends a ``sched/api`` request on to the hub's scheduler service, with the user's
    notebook where the service checks one; answers a notebook's parameters itself."""

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
        if method == "GET" and path == "notebooks/parameters":
            await self._parameters()
            return
        url = self._service_url(path)
        if self.request.query:
            url += f"?{self.request.query}"
        headers = self._service_headers()
        if "Content-Type" in self.request.headers:
            headers["Content-Type"] = self.request.headers["Content-Type"]
        body = self.request.body if method in _BODY_METHODS else None
        handed = await self._notebook_to_hand(method, path)
        if handed is not None and body is not None:
            headers["Content-Type"], body = encode(body, handed)
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            body=body,
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

    def _service_url(self, path: str) -> str:
        return f"{(self.sched.service_url or '').rstrip('/')}/sched/api/{path}"

    @staticmethod
    def _service_headers() -> dict[str, str]:
        return {"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"}

    def _root(self) -> Path:
        assert self.sched.serverapp is not None
        return Path(self.sched.serverapp.root_dir)

    async def _parameters(self) -> None:
        """A notebook's parameters, read here where the user's files are."""
        path = self.query(ParametersQuery).path
        notebook = resolve_notebook(
            self._root(), path, field="path", allow_hidden=self.contents_manager.allow_hidden
        )
        parameters = await self.call(notebook_parameters, notebook, field="path", shown=path)
        self.reply(NotebookParameters(parameters=parameters))

    async def _notebook_to_hand(self, method: str, path: str) -> HandedNotebook | None:
        """The user's copy of the notebook this request makes the service check, if any;
        the scheduler's own errors when it is missing, hidden or outside the root."""
        body = self._json_object()
        notebook: Any = None
        if method == "POST" and path in ("jobs", "runs"):
            notebook = body.get("notebook")
        elif match := _JOB_CALL.fullmatch(path):
            job_itself = match.group(2) is None
            if job_itself and not (method == "PATCH" and NOTEBOOK_FIELDS & body.keys()):
                return None
            if not job_itself and method != "POST":
                return None
            notebook = body.get("notebook") if job_itself else None
            if not isinstance(notebook, str):
                notebook = await self._own_jobs_notebook(match.group(1))
        if not isinstance(notebook, str):
            return None  # nothing to check, or the service says what is wrong
        allow_hidden = self.contents_manager.allow_hidden
        return await self.call(hand_over, self._root(), notebook, allow_hidden=allow_hidden)

    def _json_object(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    async def _own_jobs_notebook(self, job_id: str) -> str | None:
        """The notebook of job ``job_id`` if it is this server's user's (an admin's copy
        of a path is not another user's notebook)."""
        request = HTTPRequest(
            self._service_url(f"jobs/{quote(job_id, safe='')}"),
            headers=self._service_headers(),
            request_timeout=FORWARD_TIMEOUT,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code != 200:
            return None  # the forwarded request gets the service's answer
        job = json.loads(response.body)
        if job.get("owner") != self.owner:
            return None
        notebook = job.get("notebook")
        return notebook if isinstance(notebook, str) else None


def forward_handlers() -> list[tuple[str, type[APIHandler]]]:
    """The one route of a user's server in hub mode: everything under ``sched/api/``."""
    return [(r"/sched/api/(.*)", ForwardHandler)]
