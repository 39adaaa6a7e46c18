"""The value types and the bases of the API contract: UTC date-times written in ISO 8601,
JSON values with finite numbers, parameter names a notebook can assign, tags; the bases
of request and response bodies; the validation context of rows read back.

:mod:`jupyter_sched.schemas` builds the jobs and runs of the contract from these, and
:mod:`jupyter_sched.restmodels` and :mod:`jupyter_sched.reportschemas` use them too.
"""

from __future__ import annotations

import keyword
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
)


def _to_utc(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the range of representable times") from None
    if value.year >= 9000:  # schedule arithmetic must not run off the end of the calendar
        raise ValueError("must be before the year 9000")
    return value


_ISO_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def _parse_iso(value: Any) -> Any:
    # pydantic would also take a number as a Unix time; the contract says ISO 8601 text.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("expected an ISO 8601 date-time with a UTC offset")


UTCDatetime = Annotated[AwareDatetime, BeforeValidator(_parse_iso), AfterValidator(_to_utc)]


def _parameter_name(name: str) -> str:
    # papermill writes `name = value` into the notebook: anything else would be code.
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError("a parameter name must be a Python identifier and not a keyword")
    return name


def _is_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_is_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_finite(v) for v in value)
    return True


def _finite(value: JsonValue) -> JsonValue:
    # JSON has no inf or NaN: 1e400 would reach the notebook as inf and come back as null.
    if not _is_finite(value):
        raise ValueError("numbers must be finite (not NaN, Infinity or too large for a float)")
    return value


#: A parameter's name: a Python identifier that is not a keyword.
ParameterName = Annotated[str, AfterValidator(_parameter_name)]
#: A JSON value whose numbers are all finite.
FiniteJson = Annotated[JsonValue, AfterValidator(_finite)]
#: Parameters of a job or a run: names the notebook can assign, finite JSON values.
Parameters = dict[ParameterName, FiniteJson]
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[\w .:/-]+$")]


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    """Base of response bodies, readable from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


#: Validation context of values read back from the database: checks that only new input
#: needs (and that a software or tzdata upgrade may turn against stored rows) are skipped.
STORED: dict[str, Any] = {"stored": True}


def is_stored(info: ValidationInfo) -> bool:
    """Whether a validator runs on a value read back from the database (:data:`STORED`)."""
    return isinstance(info.context, dict) and bool(info.context.get("stored"))
