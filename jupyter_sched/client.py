"""The scheduler's REST API from Python: what the CLI's user commands call on a hub.

On a JupyterHub the scheduler's credentials are the service's alone, so a user's terminal
cannot open the deployment the way :class:`~jupyter_sched.service.Service` does. There
the CLI talks to the hub's scheduler service over HTTP with the user's own hub token
(``$JUPYTERHUB_API_TOKEN``) instead: :class:`ServiceClient` offers the calls the CLI makes
on a ``Service`` (:class:`SchedulerAPI`), returns the same models, parsed from the API's
JSON, and raises the same :mod:`~jupyter_sched.errors` from the API's error bodies
(``{"message", "reason", "field"}`` and the status).

The ``owner`` argument of every call is there to match ``Service``; the service knows the
caller from the token, and an admin's token acts as that admin. Given the caller's
``root_dir``, calls that make the service check a notebook hand over the caller's copy of
it (:mod:`~jupyter_sched.handoff`): the service reads no user's folder.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from . import errors
from .compare import RunComparison
from .config import ENV_HUB_TOKEN, hub_service_url
from .errors import SchedError
from .handoff import NOTEBOOK_FIELDS, HandedNotebook, encode, hand_over
from .reportschemas import BackfillPreview, Batch, BatchPage, Summary
from .restmodels import WorkerList
from .schemas import EventRuns, Job, JobPage, JobStats, Run, RunPage, WebhookToken

__all__ = ["SchedulerAPI", "ServiceClient", "error_from_response"]

M = TypeVar("M", bound=BaseModel)

#: Seconds the service gets to answer one call (comparing two large runs takes a while).
REQUEST_TIMEOUT = 120.0


class SchedulerAPI(Protocol):
    """The calls of the CLI's user commands: :class:`~jupyter_sched.service.Service` on the
    deployment itself, :class:`ServiceClient` through a hub's scheduler service."""

    def list_jobs(
        self, owner: str, *, status: str | None = ..., tag: str | None = ...,
        limit: int = ..., cursor: str | None = ...,
    ) -> JobPage: ...  # fmt: skip
    def get_job(self, owner: str, job_id: str) -> Job: ...
    def create_job(self, owner: str, data: Any) -> Job: ...
    def update_job(self, owner: str, job_id: str, data: Any) -> Job: ...
    def delete_job(self, owner: str, job_id: str, *, force: bool = ...) -> None: ...
    def pause_job(self, owner: str, job_id: str) -> Job: ...
    def resume_job(self, owner: str, job_id: str) -> Job: ...
    def run_job(self, owner: str, job_id: str, parameters: dict[str, Any] | None = ...) -> Run: ...
    def job_stats(self, owner: str, job_id: str) -> JobStats: ...
    def backfill_preview(self, owner: str, job_id: str, data: Any) -> BackfillPreview: ...
    def backfill(self, owner: str, job_id: str, data: Any) -> Batch: ...
    def get_batch(self, owner: str, batch_id: str) -> Batch: ...
    def list_batches(
        self, owner: str, *, job_id: str | None = ..., limit: int = ...
    ) -> BatchPage: ...
    def summary(
        self, owner: str, job_id: str, *, batch: str | None = ..., limit: int = ...
    ) -> Summary: ...
    def summary_csv(
        self, owner: str, job_id: str, *, batch: str | None = ..., limit: int = ...
    ) -> str: ...
    def create_webhook(self, owner: str, job_id: str) -> str: ...
    def delete_webhook(self, owner: str, job_id: str) -> None: ...
    def fire_event(self, owner: str, event: str, payload: Any = ...) -> list[Run]: ...
    def run_notebook(
        self, owner: str, notebook: str, parameters: dict[str, Any] | None = ..., *,
        kernel: str | None = ..., timeout_seconds: float | None = ...,
        output_formats: list[str] | None = ..., dispatch: bool = ...,
    ) -> Run: ...  # fmt: skip
    def list_runs(
        self, owner: str, *, job_id: str | None = ..., status: str | None = ...,
        limit: int = ..., cursor: str | None = ...,
    ) -> RunPage: ...  # fmt: skip
    def get_run(self, owner: str, run_id: str) -> Run: ...
    def cancel_run(self, owner: str, run_id: str) -> Run: ...
    def rerun(self, owner: str, run_id: str) -> Run: ...
    def compare_runs(self, owner: str, run_a: str, run_b: str) -> RunComparison: ...
    def run_output(self, owner: str, run_id: str, fmt: str = ...) -> Path: ...
    def run_log(self, owner: str, run_id: str, offset: int = ...) -> tuple[str, int]: ...
    def run_log_file(self, owner: str, run_id: str) -> Path | None: ...
    def workers(self) -> list[dict[str, Any]]: ...


#: Each scheduler error class by the ``reason`` its API body names.
def _classes_by_reason() -> dict[str, type[SchedError]]:
    found: dict[str, type[SchedError]] = {}
    pending: list[type[SchedError]] = [SchedError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.reason, cls)
        pending.extend(cls.__subclasses__())
    return found


#: For an answer whose body names no known reason: the error of its status.
_CLASSES_BY_STATUS: dict[int, type[SchedError]] = {
    400: SchedError,
    401: errors.Unauthorized,
    403: errors.Unauthorized,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.TooLarge,
    422: errors.InvalidInput,
    429: errors.RateLimited,
    503: errors.Unavailable,
}


def error_from_response(status: int, body: bytes, url: str) -> SchedError:
    """The scheduler error an error answer of the API stands for."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    message = data.get("message") or f"HTTP {status}"
    field = data.get("field") if isinstance(data.get("field"), str) else None
    if status in (401, 403) and data.get("reason") not in ("unauthorized",):
        # The hub (not the scheduler) refused the token: say which one and where.
        return errors.Unauthorized(
            f"the hub's scheduler service at {url} refused the token in ${ENV_HUB_TOKEN} "
            f"({status}: {message})"
        )
    cls = _classes_by_reason().get(str(data.get("reason")))
    if cls is None:
        cls = _CLASSES_BY_STATUS.get(status, SchedError)
    return cls(str(message), field=field)


def _segment(value: str) -> str:
    return quote(value, safe="")


class ServiceClient:
    """The scheduler service of a hub, called with one user's hub token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        files_dir: Path | None = None,
        root_dir: Path | None = None,
    ) -> None:
        #: The service's base URL; the API is at ``<base_url>sched/api/``.
        self.base_url = base_url.rstrip("/") + "/"
        self._token = token
        #: Where downloaded outputs and logs go, one folder per run.
        self.files_dir = files_dir or _cache_dir() / "runs"
        #: The folder the caller's notebook paths are relative to, whose notebooks are
        #: handed to the service with the calls that check one (``None``: not handed).
        self.root_dir = root_dir

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, root_dir: Path | None = None
    ) -> ServiceClient:
        """The client a user's terminal on a hub gets (see
        :func:`~jupyter_sched.config.hub_service_url`)."""
        source = os.environ if environ is None else environ
        url = hub_service_url(source)
        if url is None:
            raise errors.CannotStart("not on a hub: no scheduler service URL and hub token")
        return cls(url, source[ENV_HUB_TOKEN], root_dir=root_dir)

    # -- HTTP -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        handed: HandedNotebook | None = None,
    ) -> tuple[bytes, Mapping[str, str]]:
        """Call ``sched/api/<path>`` (with a ``handed`` notebook); the answer's body and
        headers, or the error it means."""
        url = f"{self.base_url}sched/api/{path}"
        given = {k: v for k, v in (query or {}).items() if v is not None}
        if given:
            url += "?" + urlencode({k: str(v).lower() if isinstance(v, bool) else v
                                    for k, v in given.items()})  # fmt: skip
        headers = {"Authorization": f"token {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(to_jsonable_python(body)).encode()
            headers["Content-Type"] = "application/json"
            if handed is not None:
                headers["Content-Type"], data = encode(data, handed)
        # The service's own http(s) URL, from the hub's configuration.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
                return response.read(), response.headers
        except urllib.error.HTTPError as exc:
            with exc:
                raise error_from_response(exc.code, exc.read(), self.base_url) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise errors.Unavailable(
                f"the hub's scheduler service at {self.base_url} does not answer ({reason})"
            ) from None

    def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        content, _ = self.request(method, path, **kwargs)
        return model.model_validate_json(content)

    def _to_hand(self, data: Any, job_id: str | None = None) -> HandedNotebook | None:
        """The caller's copy of the notebook a call makes the service check: the one
        ``data`` names, else job ``job_id``'s (the service uses it for the owner's jobs
        only); ``None`` without a root to read it from."""
        if self.root_dir is None:
            return None
        fields = to_jsonable_python(data) if data is not None else {}
        notebook = fields.get("notebook") if isinstance(fields, dict) else None
        if not isinstance(notebook, str) and job_id is not None:
            notebook = self.get_job("", job_id).notebook
        return hand_over(self.root_dir, notebook) if isinstance(notebook, str) else None

    # -- jobs -------------------------------------------------------------------------------

    def list_jobs(
        self, owner: str, *, status: str | None = None, tag: str | None = None,
        limit: int = 50, cursor: str | None = None, only_owner: str | None = None,
    ) -> JobPage:  # fmt: skip
        """A page of the caller's jobs (an admin's: everyone's, or ``only_owner``'s)."""
        query = {"status": status, "tag": tag, "limit": limit, "cursor": cursor,
                 "owner": only_owner}  # fmt: skip
        return self._model(JobPage, "GET", "jobs", query=query)

    def get_job(self, owner: str, job_id: str) -> Job:
        return self._model(Job, "GET", f"jobs/{_segment(job_id)}")

    def create_job(self, owner: str, data: Any) -> Job:
        return self._model(Job, "POST", "jobs", body=data, handed=self._to_hand(data))

    def update_job(self, owner: str, job_id: str, data: Any) -> Job:
        changed = to_jsonable_python(data)
        checked = isinstance(changed, dict) and NOTEBOOK_FIELDS & changed.keys()
        handed = self._to_hand(data, job_id) if checked else None
        return self._model(Job, "PATCH", f"jobs/{_segment(job_id)}", body=data, handed=handed)

    def delete_job(self, owner: str, job_id: str, *, force: bool = False) -> None:
        self.request("DELETE", f"jobs/{_segment(job_id)}", query={"force": force or None})

    def pause_job(self, owner: str, job_id: str) -> Job:
        return self._model(Job, "POST", f"jobs/{_segment(job_id)}/pause")

    def resume_job(self, owner: str, job_id: str) -> Job:
        return self._model(Job, "POST", f"jobs/{_segment(job_id)}/resume")

    def run_job(self, owner: str, job_id: str, parameters: dict[str, Any] | None = None) -> Run:
        body = {"parameters": parameters or {}}
        handed = self._to_hand(None, job_id) if parameters else None
        return self._model(Run, "POST", f"jobs/{_segment(job_id)}/run", body=body, handed=handed)

    def job_stats(self, owner: str, job_id: str) -> JobStats:
        return self._model(JobStats, "GET", f"jobs/{_segment(job_id)}/stats")

    def backfill_preview(self, owner: str, job_id: str, data: Any) -> BackfillPreview:
        path = f"jobs/{_segment(job_id)}/backfill/preview"
        return self._model(BackfillPreview, "POST", path, body=data)

    def backfill(self, owner: str, job_id: str, data: Any) -> Batch:
        path, handed = f"jobs/{_segment(job_id)}/backfill", self._to_hand(None, job_id)
        return self._model(Batch, "POST", path, body=data, handed=handed)

    def get_batch(self, owner: str, batch_id: str) -> Batch:
        return self._model(Batch, "GET", f"batches/{_segment(batch_id)}")

    def list_batches(self, owner: str, *, job_id: str | None = None, limit: int = 20) -> BatchPage:
        return self._model(BatchPage, "GET", "batches", query={"job_id": job_id, "limit": limit})

    def summary(
        self, owner: str, job_id: str, *, batch: str | None = None, limit: int = 50
    ) -> Summary:
        """A job's runs as a table (one batch's, or the newest ``limit``)."""
        query = {"batch": batch, "limit": limit}
        return self._model(Summary, "GET", f"jobs/{_segment(job_id)}/summary", query=query)

    def summary_csv(
        self, owner: str, job_id: str, *, batch: str | None = None, limit: int = 50
    ) -> str:
        """The same table as CSV."""
        query = {"batch": batch, "limit": limit, "format": "csv"}
        content, _ = self.request("GET", f"jobs/{_segment(job_id)}/summary", query=query)
        return content.decode("utf-8")

    def create_webhook(self, owner: str, job_id: str) -> str:
        return self._model(WebhookToken, "POST", f"jobs/{_segment(job_id)}/webhook").token

    def delete_webhook(self, owner: str, job_id: str) -> None:
        self.request("DELETE", f"jobs/{_segment(job_id)}/webhook")

    def fire_event(self, owner: str, event: str, payload: Any = None) -> list[Run]:
        body = payload if payload is not None else {}
        return self._model(EventRuns, "POST", f"events/{_segment(event)}", body=body).runs

    # -- runs -------------------------------------------------------------------------------

    def run_notebook(
        self, owner: str, notebook: str, parameters: dict[str, Any] | None = None, *,
        kernel: str | None = None, timeout_seconds: float | None = None,
        output_formats: list[str] | None = None, dispatch: bool = True,
    ) -> Run:  # fmt: skip
        """Run a notebook (relative to the caller's root on the service) once, now, on
        the deployment's workers (``dispatch=False``, executing it here, is refused)."""
        if not dispatch:
            raise errors.CannotStart(
                "a run executed in this process (--local) needs the scheduler's credentials;"
                " on a hub, runs go to its workers"
            )
        body = {
            "notebook": notebook,
            "parameters": parameters or {},
            "kernel": kernel,
            "timeout_seconds": timeout_seconds,
            "output_formats": output_formats or [],
        }
        return self._model(Run, "POST", "runs", body=body, handed=self._to_hand(body))

    def list_runs(
        self, owner: str, *, job_id: str | None = None, status: str | None = None,
        limit: int = 50, cursor: str | None = None, only_owner: str | None = None,
    ) -> RunPage:  # fmt: skip
        """A page of the caller's runs, newest first."""
        query = {"job_id": job_id, "status": status, "limit": limit, "cursor": cursor,
                 "owner": only_owner}  # fmt: skip
        return self._model(RunPage, "GET", "runs", query=query)

    def get_run(self, owner: str, run_id: str) -> Run:
        return self._model(Run, "GET", f"runs/{_segment(run_id)}")

    def cancel_run(self, owner: str, run_id: str) -> Run:
        return self._model(Run, "POST", f"runs/{_segment(run_id)}/cancel")

    def rerun(self, owner: str, run_id: str) -> Run:
        return self._model(Run, "POST", f"runs/{_segment(run_id)}/rerun")

    def compare_runs(self, owner: str, run_a: str, run_b: str) -> RunComparison:
        path = f"runs/{_segment(run_a)}/compare/{_segment(run_b)}"
        return self._model(RunComparison, "GET", path)

    def run_output(self, owner: str, run_id: str, fmt: str = "ipynb") -> Path:
        """The executed notebook (or its HTML), downloaded into :attr:`files_dir`."""
        content, _ = self.request("GET", f"runs/{_segment(run_id)}/output", query={"format": fmt})
        return self._save(run_id, f"output.{fmt}", content)

    def run_log(self, owner: str, run_id: str, offset: int = 0) -> tuple[str, int]:
        """The run's log from byte ``offset``, and the offset to ask for next."""
        content, headers = self.request(
            "GET", f"runs/{_segment(run_id)}/log", query={"offset": offset}
        )
        return content.decode("utf-8"), int(headers.get("X-Next-Offset") or offset)

    def run_log_file(self, owner: str, run_id: str) -> Path | None:
        """The run's whole log, downloaded into :attr:`files_dir`; ``None`` when empty."""
        chunks, offset = [], 0
        while True:
            text, next_offset = self.run_log(owner, run_id, offset)
            if next_offset <= offset:
                break
            chunks.append(text)
            offset = next_offset
        if not chunks:
            return None
        return self._save(run_id, "run.log", "".join(chunks).encode("utf-8"))

    def workers(self) -> list[dict[str, Any]]:
        """The deployment's live workers."""
        page = self._model(WorkerList, "GET", "workers")
        return [worker.model_dump() for worker in page.workers]

    def _save(self, run_id: str, name: str, content: bytes) -> Path:
        folder = self.files_dir / Path(run_id).name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / name
        path.write_bytes(content)
        return path


def _cache_dir() -> Path:
    """This user's cache folder for jupyter-sched (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jupyter-sched"
