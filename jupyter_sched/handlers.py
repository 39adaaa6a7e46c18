"""The REST API: thin tornado handlers over :class:`~jupyter_sched.service.Service`, and
their routes.

Each handler parses its query and body into the API models, calls the service off the
event loop, and writes the result; their common base, where errors become HTTP, is
:class:`~jupyter_sched.apihandler.SchedHandler`.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from . import openapi
from .access import AdminName
from .apihandler import SchedHandler, slug
from .errors import CannotStart, Unauthorized
from .reportschemas import BackfillRequest, BatchListQuery, SummaryQuery
from .restmodels import (
    Caller,
    DeleteJobQuery,
    JobListQuery,
    LogQuery,
    OutputQuery,
    ParametersQuery,
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
        job = await self.call(
            self.service.create_job, self.owner, self.body(JobCreate), handed=self.handed
        )
        self.reply(job, 201)


class JobHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.reply(await self.call(self.service.get_job, self.owner, job_id))

    @web.authenticated
    @authorized
    async def patch(self, job_id: str) -> None:
        job = await self.call(
            self.service.update_job, self.owner, job_id, self.body(JobUpdate), handed=self.handed
        )
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
        run = await self.call(
            self.service.run_job, self.owner, job_id, spec.parameters, handed=self.handed
        )
        self.reply(run, 201)


class BackfillHandler(SchedHandler):
    @web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        spec = self.body(BackfillRequest)
        batch = await self.call(self.service.backfill, self.owner, job_id, spec, handed=self.handed)
        self.reply(batch, 201)


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
        name = f"summary-{slug(job_id)}{'-' + slug(q.batch) if q.batch else ''}.csv"
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
            handed=self.handed,
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
