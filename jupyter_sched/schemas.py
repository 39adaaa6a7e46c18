"""The API contract: pydantic models for what clients send and receive.

Output models read SQLAlchemy rows directly (``from_attributes``); input models forbid
unknown fields so a misspelt option is an error, not silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    FiniteFloat,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
)
from pydantic import Tag as UnionTag
from pydantic.fields import FieldInfo

from . import schedules
from .statuses import RunStatus
from .valuetypes import (
    STORED,
    FiniteJson,
    Input,
    Output,
    ParameterName,
    Parameters,
    Tag,
    UTCDatetime,
    is_stored,
)

RunTrigger = Literal["schedule", "manual", "retry", "dependency", "event", "webhook", "backfill"]
#: ``error``: the ticker could not fire the job and set it aside (the job's ``error`` says why).
JobStatus = Literal["active", "paused", "error"]
Overlap = Literal["allow", "skip", "queue", "replace"]
Misfire = Literal["run_once", "skip"]
OutputFormat = Literal["ipynb", "html", "pdf"]


class CronTrigger(Input):
    """Fires on a cron schedule (5 fields, or 6 with seconds last) in a timezone."""

    kind: Literal["cron"]
    cron: str = Field(min_length=1, max_length=200, examples=["0 6 * * 1-5"])
    timezone: str = Field(default="UTC", max_length=64)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str, info: ValidationInfo) -> str:
        return value if is_stored(info) else schedules.validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str, info: ValidationInfo) -> str:
        if not is_stored(info):
            schedules.validate_timezone(value)
        return value


class IntervalTrigger(Input):
    """Fires every ``every_seconds``, counted from the job's ``start_at`` or creation."""

    kind: Literal["interval"]
    every_seconds: FiniteFloat = Field(ge=1, le=366 * 86400)


class OnceTrigger(Input):
    """Fires once, at ``at``."""

    kind: Literal["once"]
    at: UTCDatetime


class ManualTrigger(Input):
    """Never fires on its own: runs only when asked."""

    kind: Literal["manual"]


EventName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")]


class EventTrigger(Input):
    """Fires when the event ``event`` is posted to ``events/{event}`` by the job's owner."""

    kind: Literal["event"]
    event: EventName


class AfterTrigger(Input):
    """Fires when every job in ``jobs`` has ended with ``condition`` for the same fire.

    A fire is one schedule instant (jobs scheduled for the same time share it) or one
    manual, event or webhook run; the runs it leads to, through ``after`` triggers, share
    it too. With ``pass_results`` the run receives the upstream run's id, output path and
    parameters as ``upstream_run_id``, ``upstream_output_path`` and
    ``upstream_parameters`` when its notebook declares them.
    """

    kind: Literal["after"]
    jobs: list[str] = Field(min_length=1, max_length=20)
    condition: Literal["success", "failure", "completion"] = "success"
    pass_results: bool = False

    @field_validator("jobs")
    @classmethod
    def _unique_jobs(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


Trigger = Annotated[
    CronTrigger | IntervalTrigger | OnceTrigger | ManualTrigger | EventTrigger | AfterTrigger,
    Field(discriminator="kind"),
]

_trigger_adapter: TypeAdapter[Trigger] = TypeAdapter(Trigger)
_TRIGGER_MODELS: dict[str, type[Input]] = {
    "cron": CronTrigger, "interval": IntervalTrigger, "once": OnceTrigger,
    "manual": ManualTrigger, "event": EventTrigger, "after": AfterTrigger,
}  # fmt: skip
TRIGGER_KINDS = tuple(_TRIGGER_MODELS)


def stored_trigger(data: Any, *, lenient: bool = False) -> Trigger:
    """A trigger as stored on a job row, read without the checks only new input needs.

    Raises ``ValidationError`` when it does not even have the shape of a trigger, unless
    ``lenient``: then a trigger of a known kind is taken as it is (to show it as stored).
    """
    try:
        return _trigger_adapter.validate_python(data, context=STORED)
    except ValidationError:
        model = _TRIGGER_MODELS.get(str(data.get("kind"))) if isinstance(data, dict) else None
        if not lenient or model is None:
            raise
        return model.model_construct(**data)  # type: ignore[return-value]


NotifyOn = Literal["failure", "success", "slow", "value"]
#: Comparison of a recorded value with a threshold (checks, value alerts).
Op = Literal["<", "<=", ">", ">=", "==", "!="]
#: A recorded value's name.
ValueName = Annotated[str, Field(min_length=1, max_length=200)]


class Check(Input):
    """A condition on a recorded value: the run fails (``CheckFailed``) when it does not
    hold, or when the notebook did not record the value."""

    value: ValueName
    op: Op
    threshold: FiniteJson


#: A sweep: a list of parameter-override objects, or a grid ``{"name": [values...]}``
#: expanded as a cartesian product; each fire runs once per set.
Sweep = Annotated[
    Annotated[list[Parameters], UnionTag("sets")]
    | Annotated[dict[ParameterName, list[FiniteJson]], UnionTag("grid")],
    Discriminator(lambda value: "sets" if isinstance(value, list) else "grid"),
]
#: The tags of :data:`Sweep`'s two shapes (pydantic puts them in error locations).
SWEEP_SHAPES = ("sets", "grid")


def _nonempty_sweep(value: Any) -> Any:
    # An empty sweep would make fires that run nothing.
    if isinstance(value, list) and not value:
        raise ValueError("a sweep needs at least one parameter set")
    if isinstance(value, dict):
        if not value:
            raise ValueError("a sweep grid needs at least one parameter")
        for name, options in value.items():
            if not options:
                raise ValueError(f"the grid's {name!r} needs at least one value")
    return value


def _value_condition(value: str | None, info: ValidationInfo) -> str | None:
    # A "value" alert with nothing to compare would be accepted and never sent.
    if value is None and "value" in info.data.get("on", ()):
        raise ValueError("required when `on` includes value")
    return value


def _slow_threshold(value: float | None, info: ValidationInfo) -> float | None:
    # A "slow" notification with no threshold would be accepted and never sent.
    if value is None and "slow" in info.data.get("on", ()):
        raise ValueError("required when `on` includes slow")
    return value


class _Target(Input):
    """What every notification target has: which events send it (``on``), and the
    conditions of its ``slow`` and ``value`` alerts."""

    kind: str
    on: list[NotifyOn] = Field(default_factory=lambda: list[NotifyOn](["failure"]), min_length=1)
    #: With ``slow`` in ``on``: a run that takes longer than this is reported.
    slower_than_seconds: FiniteFloat | None = Field(
        default=None, gt=0, le=7 * 86400, validate_default=True
    )
    #: With ``value`` in ``on``: the recorded value, the operator and the threshold whose
    #: condition, when it holds, sends the notification.
    value: ValueName | None = Field(default=None, validate_default=True)
    op: Op = "<"
    threshold: FiniteJson = None

    _slow_needs_threshold = field_validator("slower_than_seconds")(
        lambda value, info: _slow_threshold(value, info)
    )
    _value_needs_name = field_validator("value")(lambda value, info: _value_condition(value, info))


class WebhookTarget(_Target):
    """POST a JSON message about the run to ``url`` (Slack and Teams incoming webhooks
    take the ``slack`` and ``teams`` formats)."""

    kind: Literal["webhook"]
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    format: Literal["json", "slack", "teams"] = "json"


class EmailReport(Input):
    """The rendered report of the run in the body of the email."""

    #: Leave the notebook's code out (outputs only).
    hide_input: bool = False
    #: Attach the executed notebook and/or its HTML (when the job makes HTML).
    attach: list[Literal["ipynb", "html"]] = Field(default_factory=list, max_length=2)
    #: Largest message sent (above it: the summary and links); default: the server's.
    max_bytes: int | None = Field(default=None, ge=10_000, le=50_000_000)


class EmailTarget(_Target):
    """Send an email about the run through the deployment's SMTP server."""

    kind: Literal["email"]
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]] = Field(
        min_length=1, max_length=20
    )
    #: Send the rendered report (HTML inline, images embedded) rather than a summary.
    report: EmailReport | None = None


NotificationTarget = Annotated[WebhookTarget | EmailTarget, Field(discriminator="kind")]


class JobFields(Input):
    """Settings of a job shared by create and update."""

    parameters: Parameters = Field(default_factory=dict)
    kernel: str | None = Field(default=None, max_length=255)
    retries: int = Field(default=0, ge=0, le=100)
    retry_delay_seconds: FiniteFloat = Field(default=60.0, ge=0, le=7 * 86400)
    retry_backoff: FiniteFloat = Field(default=2.0, ge=1.0, le=10.0)
    retry_max_delay_seconds: FiniteFloat | None = Field(default=None, gt=0, le=7 * 86400)
    timeout_seconds: FiniteFloat | None = Field(default=None, gt=0, le=7 * 86400)
    overlap: Overlap = "allow"
    misfire: Misfire = "run_once"
    output_formats: list[OutputFormat] = Field(
        default_factory=lambda: list[OutputFormat](["ipynb"]),
        max_length=3,
        description="Renderings kept of each run: the executed notebook (`ipynb`, always), "
        "`html`, and `pdf` (printed by Chromium; refused where the deployment has none).",
    )
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    start_at: UTCDatetime | None = None
    end_at: UTCDatetime | None = None
    max_runs: int | None = Field(default=None, ge=1, le=10**9)
    priority: int = Field(default=0, ge=-100, le=100)
    queue: str | None = Field(default=None, max_length=64, pattern=r"^[\w.-]+$")
    notifications: list[NotificationTarget] = Field(default_factory=list, max_length=10)
    retention_days: FiniteFloat | None = Field(default=None, gt=0, le=36500)
    retention_runs: int | None = Field(default=None, ge=1, le=10**9)
    #: Each fire runs once per parameter set (see :data:`Sweep`); ``None``: once.
    sweep: Sweep | None = None
    #: At most this many runs of one batch (a sweep's fire, a backfill) run at once.
    max_parallel: int | None = Field(default=None, ge=1, le=1000)
    checks: list[Check] = Field(default_factory=list, max_length=50)

    _sweep_not_empty = field_validator("sweep")(lambda value: _nonempty_sweep(value))

    @field_validator("output_formats")
    @classmethod
    def _ipynb_always(cls, value: list[str]) -> list[str]:
        return ["ipynb", *sorted({v for v in value if v != "ipynb"})]

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class JobCreate(JobFields):
    """Body of ``POST jobs``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "daily sales",
                    "notebook": "reports/sales.ipynb",
                    "parameters": {"region": "EU", "days": 7},
                    "trigger": {"kind": "cron", "cron": "0 6 * * 1-5", "timezone": "Europe/Paris"},
                    "kernel": "python3",
                    "retries": 2,
                    "retry_delay_seconds": 30,
                    "retry_backoff": 2.0,
                    "timeout_seconds": 3600,
                    "overlap": "skip",
                    "misfire": "run_once",
                    "output_formats": ["ipynb", "html"],
                    "tags": ["finance"],
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    notebook: str = Field(min_length=1, max_length=1024)
    trigger: Trigger = Field(default_factory=lambda: ManualTrigger(kind="manual"))


#: Fields of :class:`JobUpdate` that ``null`` may not clear (they have no "unset" meaning).
NOT_NULLABLE = frozenset(
    {"name", "notebook", "trigger", "parameters", "retries", "retry_delay_seconds",
     "retry_backoff", "overlap", "misfire", "output_formats", "tags", "priority",
     "notifications", "checks"}
)  # fmt: skip


def _update_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of :class:`JobUpdate`: the fields in :data:`NOT_NULLABLE` do not
    take ``null`` (the service refuses it), and no field has a default (absent means
    unchanged)."""
    for name, field_schema in schema["properties"].items():
        field_schema.pop("default", None)
        options = field_schema.get("anyOf")
        if name in NOT_NULLABLE and options is not None:
            rest = [option for option in options if option != {"type": "null"}]
            del field_schema["anyOf"]
            field_schema.update(rest[0] if len(rest) == 1 else {"anyOf": rest})


class _Patch(Input):
    """Base of PATCH bodies: their JSON schema says what :func:`_update_schema` says."""

    model_config = ConfigDict(json_schema_extra=_update_schema)

    _sweep_not_empty = field_validator("sweep", check_fields=False)(
        lambda value: _nonempty_sweep(value)
    )


def _patch_model(create: type[Input], name: str, doc: str) -> type[Input]:
    """The body of a PATCH of what ``create`` makes: each of its fields, with the same
    limits, optional and ``None`` by default (absent: unchanged), plus ``version`` (when
    given, the update applies only if the row is still at that version)."""
    fields: dict[str, Any] = {}
    for field_name, info in create.model_fields.items():
        optional = FieldInfo.merge_field_infos(info, default=None)
        optional.default_factory = None
        fields[field_name] = (info.rebuild_annotation() | None, optional)
    fields["version"] = (int | None, None)
    model: type[Input] = create_model(name, __base__=_Patch, __doc__=doc, **fields)
    return model


if TYPE_CHECKING:  # a model built at run time: type checkers see what every PATCH body is
    JobUpdate = _Patch
else:
    JobUpdate = _patch_model(
        JobCreate,
        "JobUpdate",
        "Body of ``PATCH jobs/{id}``: an absent field is unchanged, ``null`` clears it.",
    )


class RunNow(Input):
    """Body of ``POST jobs/{id}/run``: parameter overrides for this run only."""

    parameters: Parameters = Field(default_factory=dict)


class RunNotebook(Input):
    """Body of ``POST runs``: run a notebook once, now, without a job (``jupyter sched run``)."""

    notebook: str = Field(min_length=1, max_length=1024)
    parameters: Parameters = Field(default_factory=dict)
    kernel: str | None = Field(default=None, max_length=255)
    timeout_seconds: FiniteFloat | None = Field(default=None, gt=0, le=7 * 86400)
    output_formats: list[OutputFormat] = Field(default_factory=list, max_length=2)


class Progress(Output):
    done: int
    total: int


class RunError(Output):
    ename: str
    evalue: str
    cell_index: int | None


class Run(Output):
    """One execution attempt of a notebook."""

    id: str
    job_id: str | None
    owner: str
    notebook: str
    status: RunStatus
    trigger: RunTrigger
    attempt: int
    retry_of: str | None
    scheduled_for: datetime | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    parameters: dict[str, Any]
    progress: Progress
    error: RunError | None
    worker_id: str | None
    output_formats: list[str]
    chain_id: str | None = None
    caused_by: list[str] = Field(default_factory=list)
    #: Named JSON values the notebook recorded (``jupyter_sched.record``, scrapbook glue).
    values: dict[str, Any] = Field(default_factory=dict)
    #: The batch (a sweep's fire, a backfill) the run belongs to, and its place in it.
    batch_id: str | None = None
    batch_index: int = 0
    #: Whether ``runs/{id}/thumbnail`` has an image of the run's last image output.
    has_thumbnail: bool = False
    #: Whether ``runs/{id}/output?format=pdf`` has the run's PDF rendering.
    has_pdf: bool = False


class Job(Output):
    """A notebook, its parameters and a trigger, with its state."""

    id: str
    name: str
    owner: str
    notebook: str
    parameters: dict[str, Any]
    trigger: Trigger
    #: The trigger in plain words, as the ``preview`` endpoint words it.
    trigger_description: str
    kernel: str | None
    status: JobStatus
    #: Why the ticker set the job aside (``status: "error"``); ``None`` otherwise.
    error: str | None = None
    next_fire_at: datetime | None
    retries: int
    retry_delay_seconds: float
    retry_backoff: float
    retry_max_delay_seconds: float | None
    timeout_seconds: float | None
    overlap: Overlap
    misfire: Misfire
    output_formats: list[str]
    tags: list[str]
    start_at: datetime | None
    end_at: datetime | None
    max_runs: int | None
    priority: int
    queue: str
    notifications: list[NotificationTarget] = Field(default_factory=list)
    retention_days: float | None = None
    retention_runs: int | None = None
    sweep: Sweep | None = None
    max_parallel: int | None = None
    checks: list[Check] = Field(default_factory=list)

    @field_validator("checks", mode="before")
    @classmethod
    def _no_checks(cls, value: Any) -> Any:
        return [] if value is None else value

    #: Whether the job has a webhook token (the token is shown only when created).
    webhook: bool = False
    created_at: datetime
    updated_at: datetime
    version: int
    last_run: Run | None = None

    @field_validator("trigger", mode="wrap")
    @classmethod
    def _as_stored(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # A stored trigger that new input could no longer have (a timezone gone from
        # tzdata, a stricter check after an upgrade) is still shown, as it is stored.
        return stored_trigger(value, lenient=True) if isinstance(value, dict) else handler(value)


class JobPage(BaseModel):
    jobs: list[Job]
    next_cursor: str | None


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None


class JobStats(BaseModel):
    """Outcome counts and durations over all runs of a job."""

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None
    last_success_at: datetime | None
    last_failure_at: datetime | None


class PreviewRequest(Input):
    trigger: Trigger
    count: int = Field(default=5, ge=1, le=50)
    start_at: UTCDatetime | None = None
    end_at: UTCDatetime | None = None


class Preview(BaseModel):
    description: str
    next: list[datetime]


class NotebookParameter(BaseModel):
    name: str
    type: str
    default: Any
    help: str


class NotebookParameters(BaseModel):
    parameters: list[NotebookParameter]


class Payload(Input):
    """Body of ``POST events/{name}`` and of webhook calls: any JSON object, handed to
    notebooks that declare an ``event_payload`` parameter."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)

    __pydantic_extra__: dict[str, FiniteJson] = Field(init=False)


class EventRuns(BaseModel):
    """The runs an event started."""

    runs: list[Run]


class WebhookToken(BaseModel):
    """A job's new webhook token: shown this once, only its hash is kept."""

    token: str
    #: Where to POST, with ``Authorization: Bearer <token>``.
    url: str
