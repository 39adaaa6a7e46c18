"""Input for the service: API models read from untrusted data (the first problem as an
:class:`~jupyter_sched.errors.InvalidInput` naming its field), page sizes, and who may
use a queue."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InvalidInput, SchedError
from .schemas import SWEEP_SHAPES, TRIGGER_KINDS

M = TypeVar("M", bound=BaseModel)


#: Largest page a list call returns.
MAX_PAGE = 200

_TARGET_KINDS = ("webhook", "email")


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` against an API model, turning the first problem into InvalidInput."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def parse_json(model: type[M], raw: str | bytes) -> M:
    """Validate a JSON document against an API model, strictly: JSON types must match the
    schema (no number for a date, no ``"5"`` or ``true`` for an integer)."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":  # e.g. a lone surrogate, deep nesting
            raise SchedError(
                f"body: not valid JSON ({exc.errors()[0]['msg']})", field="body"
            ) from None
        raise invalid_input(exc) from None


def invalid_input(exc: ValidationError, *, prefix: str | None = None) -> InvalidInput:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    if prefix is not None:  # a nested value validated on its own (a stored trigger)
        loc = [prefix, *loc]
    # pydantic puts the tags of discriminated unions in the location
    if len(loc) > 1 and loc[0] == "trigger" and loc[1] in TRIGGER_KINDS:
        del loc[1]
    if len(loc) > 2 and loc[0] == "notifications" and loc[2] in _TARGET_KINDS:
        del loc[2]
    if len(loc) > 1 and loc[0] == "sweep" and loc[1] in SWEEP_SHAPES:
        del loc[1]
    if loc and loc[-1] == "[key]":  # a dict key is at fault: name it, not pydantic's marker
        del loc[-1]
    field = ".".join(loc) or None
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown trigger kind; expected one of {', '.join(TRIGGER_KINDS)}"
    return InvalidInput(
        message if field and message.startswith(f"{field}") else f"{field}: {message}",
        field=field,
    )


def page_size(limit: int) -> int:
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE}", field="limit")
    return limit


#: Queues named ``user-<name>`` belong to user <name>. On a hub, the workers of such a queue
#: run as that user, so nobody else may send notebooks there.
USER_QUEUE_PREFIX = "user-"


def check_queue(owner: str, queue: str) -> str:
    """``queue`` if ``owner`` may send runs to it; :class:`InvalidInput` otherwise."""
    own = f"{USER_QUEUE_PREFIX}{owner}"
    if queue.startswith(USER_QUEUE_PREFIX) and queue != own:
        raise InvalidInput(
            f"queue: {queue!r} is another user's personal queue; yours is {own!r}",
            field="queue",
        )
    return queue
