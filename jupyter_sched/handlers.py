"""The REST API: thin tornado handlers over :class:`~jupyter_sched.service.Service`.

Each handler parses its query and body into the API models, calls the service off the
event loop, and writes the result. Errors are turned into HTTP responses in one place,
:meth:`SchedHandler.write_error`: a :class:`~jupyter_sched.errors.SchedError` gives its
own status and ``{"message", "reason", "field"}``; anything else keeps that shape. While
the history database is unavailable every call answers 503 with ``Retry-After``, and the
outage is logged once by the database, not once per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.client import responses
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.prometheus.log_functions import prometheus_log_method
from pydantic import BaseModel
from tornado import web

from . import openapi
from .access import AdminName
from .errors import CannotStart, SchedError, TooLarge, Unauthorized, Unavailable
from .parsing import parse, parse_json
from .reportschemas import BackfillRequest, BatchListQuery, SummaryQuery
from .restmodels import (
    Caller,
    DeleteJobQuery,
    JobListQuery,
    LogQuery,
    OutputQuery,
    ParametersQuery,
    Query,
    RunListQuery,
    WorkerInfo,
    WorkerList,
)
from .schemas import (
    EventRuns,
    JobCreate,
    JobUpdate,
    NotebookParameters,
    Payload,
    PreviewRequest,
    RunNotebook,
    RunNow,
    WebhookToken,
)
from .service import Service

if TYPE_CHECKING:
    from .app import SchedApp

#: The resource name the server's authorizer is asked about for every request.
AUTH_RESOURCE = "sched"

T = TypeVar("T")
Q = TypeVar("Q", bound=Query)
M = TypeVar("M", bound=BaseModel)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


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

    def body(self, model: type[M], *, required: bool = True) -> M:
        """The request body as ``model``: a JSON object of at most ``max_body_bytes``,
        whose JSON types match the schema."""
        raw = self.request.body
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
            data = json.loads(raw, parse_constant=_no_constants)
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
            reply = {"message": message, "reason": _slug(default), "field": None}
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


def _slug(text: str) -> str:
    return text.lower().replace(" ", "_").replace("-", "_")


# -- jobs ---------------------------------------------------------------------------------


class JobsHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        q = self.query(JobListQuery)
        page = await self.call(
            self.service.list_jobs,
            self.owner,
            status=q.status,
            tag=q.tag,
            limit=q.limit,
            cursor=q.cursor,
            only_owner=q.owner,
        )
        self.reply(page)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        job = await self.call(self.service.create_job, self.owner, self.body(JobCreate))
        self.reply(job, 201)


class JobHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.reply(await self.call(self.service.get_job, self.owner, job_id))

    @web.authenticated
    @authorized
    async def patch(self, job_id: str) -> None:
        job = await self.call(self.service.update_job, self.owner, job_id, self.body(JobUpdate))
        self.reply(job)

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        q = self.query(DeleteJobQuery)
        await self.call(self.service.delete_job, self.owner, job_id, force=q.force)
        self.set_status(204)
        self.finish()


class PauseHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.reply(await self.call(self.service.pause_job, self.owner, job_id))


class ResumeHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.reply(await self.call(self.service.resume_job, self.owner, job_id))


class RunJobHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        spec = self.body(RunNow, required=False)
        run = await self.call(self.service.run_job, self.owner, job_id, spec.parameters)
        self.reply(run, 201)


class BackfillHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        spec = self.body(BackfillRequest)
        self.reply(await self.call(self.service.backfill, self.owner, job_id, spec), 201)


class BackfillPreviewHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        spec = self.body(BackfillRequest)
        self.reply(await self.call(self.service.backfill_preview, self.owner, job_id, spec))


class SummaryHandler(SchedHandler):
    """A job's runs as a table: JSON, or CSV with ``format=csv``."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        q = self.query(SummaryQuery)
        if q.format == "json":
            summary = self.service.summary
            self.reply(await self.call(summary, self.owner, job_id, batch=q.batch, limit=q.limit))
            return
        text = await self.call(
            self.service.summary_csv, self.owner, job_id, batch=q.batch, limit=q.limit
        )
        name = f"summary-{_slug(job_id)}{'-' + _slug(q.batch) if q.batch else ''}.csv"
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(text.encode("utf-8"), set_content_type="text/csv; charset=utf-8")


class BatchesHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        q = self.query(BatchListQuery)
        page = await self.call(
            self.service.list_batches, self.owner, job_id=q.job_id, limit=q.limit
        )
        self.reply(page)


class BatchHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self, batch_id: str) -> None:
        self.reply(await self.call(self.service.get_batch, self.owner, batch_id))


class StatsHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.reply(await self.call(self.service.job_stats, self.owner, job_id))


class WebhookTokenHandler(SchedHandler):
    """Create (or rotate) and remove a job's webhook token."""

    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        token = await self.call(self.service.create_webhook, self.owner, job_id)
        url = f"{self.request.protocol}://{self.request.host}{self.base_url}sched/api/webhooks/{job_id}"
        self.reply(WebhookToken(token=token, url=url), 201)

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await self.call(self.service.delete_webhook, self.owner, job_id)
        self.set_status(204)
        self.finish()


class EventsHandler(SchedHandler):
    """Post an event: every active job of the caller waiting for it runs."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        payload = self.body(Payload, required=False).model_dump()
        runs = await self.call(self.service.fire_event, self.owner, name, payload or None)
        self.reply(EventRuns(runs=runs), 202)


class WebhookCallHandler(SchedHandler):
    """Run a job for a caller that holds its webhook token; no Jupyter session is used.

    The token (``Authorization: Bearer <token>``) is the credential: this handler reads
    no cookie, so there is no cross-site request to forge.
    """

    def check_xsrf_cookie(self) -> None:
        return None

    @allow_unauthenticated
    async def post(self, job_id: str) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a webhook call needs 'Authorization: Bearer <token>'")
        payload = self.body(Payload, required=False).model_dump()
        run = await self.call(self.service.fire_webhook, job_id, token.strip(), payload or None)
        self.reply(run, 201)


# -- runs ---------------------------------------------------------------------------------


class RunsHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        q = self.query(RunListQuery)
        page = await self.call(
            self.service.list_runs,
            self.owner,
            job_id=q.job_id,
            status=q.status,
            since=q.since,
            until=q.until,
            limit=q.limit,
            cursor=q.cursor,
            only_owner=q.owner,
        )
        self.reply(page)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        spec = self.body(RunNotebook)
        run = await self.call(
            self.service.run_notebook,
            self.owner,
            spec.notebook,
            spec.parameters,
            kernel=spec.kernel,
            timeout_seconds=spec.timeout_seconds,
            output_formats=list(spec.output_formats),
        )
        self.reply(run, 201)


class RunHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(self.service.get_run, self.owner, run_id))


class CancelHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        self.reply(await self.call(self.service.cancel_run, self.owner, run_id))


class RerunHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        self.reply(await self.call(self.service.rerun, self.owner, run_id), 201)


#: Media types of a run's outputs, by format.
OUTPUT_MEDIA = {
    "ipynb": "application/x-ipynb+json",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


class OutputHandler(SchedHandler):
    """The executed notebook or its HTML or PDF rendering: always a download, sandboxed."""

    @property
    def content_security_policy(self) -> str:
        return str(super().content_security_policy) + "; sandbox"

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        q = self.query(OutputQuery)
        path = await self.call(self.service.run_output, self.owner, run_id, q.format)
        data = await self.call(path.read_bytes)
        media = OUTPUT_MEDIA[q.format]
        self.set_header("Content-Disposition", f'attachment; filename="{run_id}.{q.format}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(data, set_content_type=media)


class CompareHandler(SchedHandler):
    """What changed from one run to another: parameters and the notebooks' diff."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, other_id: str) -> None:
        self.reply(await self.call(self.service.compare_runs, self.owner, run_id, other_id))


class ThumbnailHandler(SchedHandler):
    """A small image of the run's last image output; sandboxed, since it may be an SVG."""

    @property
    def content_security_policy(self) -> str:
        return str(super().content_security_policy) + "; sandbox"

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        path = await self.call(self.service.run_thumbnail, self.owner, run_id)
        data = await self.call(path.read_bytes)
        media = "image/svg+xml" if path.suffix == ".svg" else "image/png"
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, max-age=86400")  # never changes
        self.finish(data, set_content_type=media)


class LogHandler(SchedHandler):
    """The run's log from a byte offset; ``X-Next-Offset`` says where to continue."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        q = self.query(LogQuery)
        text, next_offset = await self.call(self.service.run_log, self.owner, run_id, q.offset)
        self.set_header("X-Next-Offset", str(next_offset))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(text.encode("utf-8"), set_content_type="text/plain; charset=utf-8")


# -- the rest -----------------------------------------------------------------------------


class PreviewHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(
            await self.call(self.service.preview, self.body(PreviewRequest), owner=self.owner)
        )


class ParametersHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        q = self.query(ParametersQuery)
        parameters = await self.call(self.service.notebook_parameters, q.path, self.owner)
        self.reply(NotebookParameters(parameters=parameters))


class WorkersHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        workers = await self.call(self.service.workers)
        self.reply(WorkerList(workers=[WorkerInfo.model_validate(w) for w in workers]))


class WhoAmIHandler(SchedHandler):
    """The caller's owner name, and whether they are an admin of the scheduler."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        owner = self.owner
        self.reply(Caller(name=str(owner), admin=isinstance(owner, AdminName)))


class HealthHandler(SchedHandler):
    """200 when the scheduler works; 503, with the same body, when it is degraded."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        health = await self.call(self.sched.health)
        if health.database != "ok":
            self.unavailable()
        self.reply(health, 200 if health.status == "ok" else 503)


class OpenAPIHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps(openapi.document(self.base_url)))


#: Every route (a path template below ``{base_url}sched/api``) and its handler.
ROUTES: list[tuple[str, type[SchedHandler]]] = [
    ("/jobs", JobsHandler),
    ("/jobs/{job_id}", JobHandler),
    ("/jobs/{job_id}/pause", PauseHandler),
    ("/jobs/{job_id}/resume", ResumeHandler),
    ("/jobs/{job_id}/run", RunJobHandler),
    ("/jobs/{job_id}/stats", StatsHandler),
    ("/jobs/{job_id}/backfill", BackfillHandler),
    ("/jobs/{job_id}/backfill/preview", BackfillPreviewHandler),
    ("/jobs/{job_id}/summary", SummaryHandler),
    ("/batches", BatchesHandler),
    ("/batches/{batch_id}", BatchHandler),
    ("/jobs/{job_id}/webhook", WebhookTokenHandler),
    ("/events/{name}", EventsHandler),
    ("/runs", RunsHandler),
    ("/runs/{run_id}", RunHandler),
    ("/runs/{run_id}/cancel", CancelHandler),
    ("/runs/{run_id}/rerun", RerunHandler),
    ("/runs/{run_id}/output", OutputHandler),
    ("/runs/{run_id}/log", LogHandler),
    ("/runs/{run_id}/thumbnail", ThumbnailHandler),
    ("/runs/{run_id}/compare/{other_id}", CompareHandler),
    ("/preview", PreviewHandler),
    ("/notebooks/parameters", ParametersHandler),
    ("/workers", WorkersHandler),
    ("/whoami", WhoAmIHandler),
    ("/health", HealthHandler),
    ("/openapi.json", OpenAPIHandler),
]


#: Routes that authenticate with a token of their own instead of a Jupyter session.
TOKEN_ROUTES: list[tuple[str, type[SchedHandler]]] = [
    ("/webhooks/{job_id}", WebhookCallHandler),
]


def handlers() -> list[tuple[str, type[SchedHandler]]]:
    """The URL patterns (relative to the server's base URL) and handlers of the API."""
    return [(openapi.url_pattern(template), handler) for template, handler in ROUTES + TOKEN_ROUTES]


class UnavailableHandler(SchedHandler):
    """Every route of the API while the scheduler cannot start: 503 with the reason."""

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        raise self.sched.unavailable or CannotStart("the scheduler did not start")

    post = patch = delete = get


def unavailable_handlers() -> list[tuple[str, type[SchedHandler]]]:
    """The routes of a server whose scheduler could not start."""
    return [(openapi.url_pattern("/{path}").replace("[^/]+", ".*"), UnavailableHandler)]
