"""The base of the REST API's handlers: authentication, parsing, errors.

:class:`SchedHandler` parses a request's query and body into the API models, calls the
service off the event loop, and writes the result. Errors are turned into HTTP responses in
one place, :meth:`SchedHandler.write_error`: a :class:`~jupyter_sched.errors.SchedError`
gives its own status and ``{"message", "reason", "field"}``; anything else keeps that shape.
While the history database is unavailable every call answers 503 with ``Retry-After``, and
the outage is logged once by the database, not once per request. The routes are in
:mod:`jupyter_sched.handlers`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.client import responses
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jupyter_server.base.handlers import APIHandler
from jupyter_server.prometheus.log_functions import prometheus_log_method
from pydantic import BaseModel
from tornado import web

from .errors import SchedError, TooLarge, Unavailable
from .handoff import HandedNotebook, from_parts
from .parsing import parse, parse_json
from .restmodels import (
    Query,
)
from .service import Service

if TYPE_CHECKING:
    from .app import SchedApp

#: The resource name the server's authorizer is asked about for every request.
AUTH_RESOURCE = "sched"

T = TypeVar("T")
Q = TypeVar("Q", bound=Query)
M = TypeVar("M", bound=BaseModel)


class SchedHandler(APIHandler):
    """Base of every handler: authentication, parsing, the service call, errors."""

    auth_resource = AUTH_RESOURCE
    #: The response says the history database is unavailable (logged once, elsewhere).
    _outage = False

    @property
    def sched(self) -> SchedApp:
        return cast("SchedApp", self.settings["jupyter_sched"])

    @property
    def service(self) -> Service:
        """The scheduler's service; :class:`Unavailable` until its database is ready."""
        if not self.sched.ready.is_set():
            raise self.sched.unavailable or Unavailable()
        return self.sched.service

    @property
    def owner(self) -> str:
        """Whose jobs and runs this request sees."""
        return self.sched.owner_of(self.current_user)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking (database, file) call off the event loop."""
        return await self.sched.run_blocking(fn, *args, **kwargs)

    def query(self, model: type[Q]) -> Q:
        """The query string as ``model`` (the last value of a repeated argument)."""
        values: dict[str, str] = {}
        for name in model.model_fields:
            raw = self.request.query_arguments.get(name)
            if raw:
                try:
                    values[name] = raw[-1].decode("utf-8")
                except UnicodeDecodeError:
                    raise SchedError(f"{name}: not UTF-8 text", field=name) from None
        return parse(model, values)

    def _parts(self) -> tuple[bytes, HandedNotebook | None]:
        """The JSON body, and the notebook the caller handed over with it, if any."""
        if self.request.headers.get("Content-Type", "").startswith("multipart/form-data"):
            return from_parts(self.request.body_arguments, self.request.files)
        return self.request.body, None

    @property
    def handed(self) -> HandedNotebook | None:
        """The notebook its owner handed over with this request (:mod:`.handoff`)."""
        return self._parts()[1]

    def body(self, model: type[M], *, required: bool = True) -> M:
        """The request body as ``model``: a JSON object of at most ``max_body_bytes``,
        whose JSON types match the schema."""
        raw = self._parts()[0]
        limit = self.sched.max_body_bytes
        if len(raw) > limit:
            raise TooLarge(
                f"body: {len(raw)} bytes is more than the limit of {limit}", field="body"
            )
        if not raw.strip():
            if required:
                raise SchedError("body: a JSON object is required", field="body")
            return parse(model, {})
        try:
            # NaN and Infinity are read as numbers so that validation refuses them with a
            # 422 naming their field, as it does a number too large for a float (1e400).
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise SchedError(f"body: not valid JSON ({exc})", field="body") from None
        if not isinstance(data, dict):
            raise SchedError(
                f"body: expected a JSON object, got {type(data).__name__}", field="body"
            )
        return parse_json(model, raw)

    def reply(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.finish(model.model_dump_json())

    # -- errors: the one place they become HTTP ------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SchedError):
            status_code = exc.status_code
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        default = responses.get(status_code, "Error")
        if isinstance(exc, Unavailable):
            self.unavailable()
        if isinstance(exc, SchedError):
            reply: dict[str, Any] = exc.to_dict()
        elif isinstance(exc, web.HTTPError) or exc is None:
            message = (exc.log_message if exc is not None else None) or default
            reply = {"message": message, "reason": slug(default), "field": None}
        else:  # a bug: the traceback is in the server log, not in the response
            reply = {"message": "internal error; see the server log", "reason": "internal"}
            reply["field"] = None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(reply))

    def unavailable(self) -> None:
        """Mark the response as an answer during a database outage: ``Retry-After``, and
        no error line in the access log."""
        self._outage = True
        self.set_header("Retry-After", str(Unavailable.retry_after))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, Unavailable):
            return  # the database logs the outage once; each request would drown that
        if isinstance(value, SchedError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)

    def _log(self) -> None:
        # jupyter_server logs every 5xx as two error lines: during an outage, a polling
        # panel or probe would write them every few seconds. Metrics still count them.
        if not self._outage:
            super()._log()
            return
        self.log.debug("%d %s %s: history database unavailable", self.get_status(),
                       self.request.method, self.request.path)  # fmt: skip
        prometheus_log_method(self)  # type: ignore[no-untyped-call]


def slug(text: str) -> str:
    return text.lower().replace(" ", "_").replace("-", "_")
