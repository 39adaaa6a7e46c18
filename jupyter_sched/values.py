"""Recorded values: named JSON values a notebook records while it runs.

``record("rows", 1234)`` in a notebook writes a display output of :data:`VALUE_MIME`
(with a plain-text line, so a notebook run by hand shows the value too). After a run the
worker reads those outputs, and the outputs of scrapbook's ``sb.glue`` (its
``application/scrapbook.scrap.<encoder>+json`` format, JSON and text encoders), into the
run's ``values``. Job checks and value alerts compare a value with a threshold.

This module is imported inside notebook kernels: standard library only at import time.
"""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

#: The MIME type of a recorded value's display output; its payload is
#: ``{"name": <str>, "value": <JSON>}``.
VALUE_MIME = "application/vnd.jupyter-sched.value+json"
#: scrapbook's glue outputs: ``application/scrapbook.scrap.<encoder>+json`` with the payload
#: ``{"name", "data", "encoder", "version"}``.
SCRAPBOOK_PREFIX = "application/scrapbook.scrap."
#: scrapbook encoders whose data is the value itself (others hold dataframes or displays).
SCRAPBOOK_ENCODERS = ("json", "text")
#: The comparison operators of checks and value alerts.
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
#: Longest recorded value name kept.
MAX_NAME = 200


def record(name: str, value: Any) -> None:
    """Record ``value`` (any JSON value) under ``name`` for the scheduler.

    The run keeps it in its ``values``; summaries tabulate it, checks and alerts test it.
    Recording a name again replaces its value. Outside a kernel this prints the value.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f"record: the name must be a non-empty string of at most {MAX_NAME}")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record: {name!r} is not a JSON value ({exc})") from None
    data = {VALUE_MIME: {"name": name, "value": json.loads(text)}, "text/plain": f"{name}: {text}"}
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel
        print(data["text/plain"])
        return
    display(data, raw=True)  # type: ignore[no-untyped-call]


def extract_values(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """The values a notebook (as JSON) recorded, in output order: a later one wins."""
    values: dict[str, Any] = {}
    for cell in notebook.get("cells", ()):
        for output in cell.get("outputs", ()) if isinstance(cell, Mapping) else ():
            if not isinstance(output, Mapping):
                continue
            data = output.get("data")
            if isinstance(data, Mapping):
                values.update(_output_values(data))
    return values


def read_values(path: Path) -> dict[str, Any]:
    """The values recorded in the notebook file at ``path`` (none if it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
    except (OSError, ValueError):
        return {}
    return extract_values(notebook) if isinstance(notebook, Mapping) else {}


def _output_values(data: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    payload = data.get(VALUE_MIME)
    if isinstance(payload, Mapping) and _valid_name(payload.get("name")):
        yield payload["name"], payload.get("value")
    for mime, payload in data.items():
        if not (mime.startswith(SCRAPBOOK_PREFIX) and mime.endswith("+json")):
            continue
        encoder = mime[len(SCRAPBOOK_PREFIX) : -len("+json")]
        if encoder not in SCRAPBOOK_ENCODERS or not isinstance(payload, Mapping):
            continue
        if not _valid_name(payload.get("name")):
            continue
        value = payload.get("data")
        if encoder == "json" and isinstance(value, str):
            # scrapbook's JSON encoder also accepts a JSON document given as a string
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        yield payload["name"], value


def _valid_name(name: Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME


def holds(value: Any, op: str, threshold: Any) -> bool:
    """Whether ``value <op> threshold``; false when they cannot be compared (a string
    against a number, a missing value): a condition that cannot be judged is not met."""
    try:
        return bool(OPERATORS[op](value, threshold))
    except TypeError:
        return False


def failed_check(values: Mapping[str, Any], checks: Iterable[Mapping[str, Any]]) -> str | None:
    """Why the first failing check fails (``None`` when all hold). A value the notebook
    did not record fails its check."""
    for check in checks:
        name, op, threshold = check["value"], check["op"], check["threshold"]
        shown = json.dumps(threshold)
        if name not in values:
            return f"{name}: no value {name!r} was recorded (check: {name} {op} {shown})"
        if not holds(values[name], op, threshold):
            return f"{name}: {json.dumps(values[name])} is not {op} {shown}"
    return None
