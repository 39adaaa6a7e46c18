"""Notebooks handed to the scheduler by the user's side, so a hub's service need not read
users' folders.

On a hub, the scheduler service checks a job's notebook (its parameters cell, its kernel)
when the job is created or changed and when it is run now, but it should not open files in
users' home directories: only the user's own processes (their server, their terminal) read
them. Those processes hand the notebook over with the request, as one more part of a
``multipart/form-data`` body:

- ``request``: the JSON body the API documents, unchanged;
- ``notebook_path``: the notebook's path as the request names it;
- ``notebook``: the notebook as its owner reads it, outputs and attachments dropped (the
  service looks at sources and metadata only).

The handed copy is used to check the request and nothing else: runs execute the notebook
file, read by the worker with its owner's rights. A caller handing something else than their
file only fools the checks of their own job. Requests without a handed notebook work as
before (the service reads the file with the owner's rights).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInput, SchedError, TooLarge

__all__ = [
    "MAX_HANDED_BYTES",
    "NOTEBOOK_FIELDS",
    "HandedNotebook",
    "encode",
    "from_parts",
    "hand_over",
    "notebook_to_hand",
]

#: Parts of a request body that hands a notebook over.
REQUEST_PART = "request"
PATH_PART = "notebook_path"
NOTEBOOK_PART = "notebook"
#: The fields of a job whose change makes the scheduler check its notebook.
NOTEBOOK_FIELDS = frozenset({"notebook", "parameters", "kernel", "sweep"})
#: The largest handed notebook accepted (outputs are dropped before it is handed).
MAX_HANDED_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class HandedNotebook:
    """A notebook's content, handed over by its owner for the request naming ``path``."""

    path: str
    content: bytes

    def serves(self, notebook: str) -> bool:
        """Whether this is the notebook a request names (else the file is read as before)."""
        return self.path == notebook

    @contextlib.contextmanager
    def as_file(self) -> Iterator[Path]:
        """The content in a private temporary file named like the notebook."""
        with tempfile.TemporaryDirectory(prefix="sched-handed-") as folder:
            copy = Path(folder) / (os.path.basename(self.path) or "notebook.ipynb")
            copy.write_bytes(self.content)
            yield copy


def notebook_to_hand(path: Path) -> bytes:
    """The notebook at ``path`` as it is handed over: without outputs and attachments,
    which checks do not read; the bytes as they are when it is not a notebook (the service
    then says what is wrong)."""
    raw = path.read_bytes()
    try:
        notebook = json.loads(raw)
        cells = notebook["cells"]
        for cell in cells:
            cell.pop("attachments", None)
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
    except (ValueError, KeyError, TypeError, AttributeError):
        return raw
    return json.dumps(notebook, ensure_ascii=False).encode("utf-8")


def encode(body: bytes, handed: HandedNotebook) -> tuple[str, bytes]:
    """The ``(content type, body)`` of a request handing ``handed`` over with ``body``."""
    from urllib3 import encode_multipart_formdata

    data, content_type = encode_multipart_formdata(
        [
            (REQUEST_PART, ("request.json", body, "application/json")),
            (PATH_PART, handed.path),
            (NOTEBOOK_PART, ("notebook.ipynb", handed.content, "application/x-ipynb+json")),
        ]
    )
    return content_type, data


def from_parts(
    arguments: Mapping[str, Sequence[bytes]], files: Mapping[str, Sequence[Any]]
) -> tuple[bytes, HandedNotebook | None]:
    """The JSON body and the handed notebook of a ``multipart/form-data`` request, from
    the parts tornado parsed (``body_arguments``, ``files``)."""
    request = files.get(REQUEST_PART) or []
    body = bytes(request[0]["body"]) if request else b"".join(arguments.get(REQUEST_PART, []))
    notebook = files.get(NOTEBOOK_PART) or []
    paths = arguments.get(PATH_PART) or []
    if not notebook:
        return body, None
    if not paths:
        raise SchedError(
            f"{PATH_PART}: a handed notebook needs the path it is for", field=PATH_PART
        )
    content = bytes(notebook[0]["body"])
    if len(content) > MAX_HANDED_BYTES:
        raise TooLarge(
            f"notebook: the handed notebook is {len(content)} bytes, more than the limit of "
            f"{MAX_HANDED_BYTES}",
            field="notebook",
        )
    try:
        path = paths[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise SchedError(f"{PATH_PART}: not UTF-8 text", field=PATH_PART) from None
    return body, HandedNotebook(path, content)


def hand_over(
    root: Path, notebook: str, *, field: str = "notebook", allow_hidden: bool = True
) -> HandedNotebook:
    """The notebook ``notebook`` (relative to ``root``), read by this process to be handed
    over; the scheduler's errors when it is outside the root, hidden or missing."""
    from .notebooks import resolve_notebook

    path = resolve_notebook(root, notebook, field=field, allow_hidden=allow_hidden)
    try:
        return HandedNotebook(notebook, notebook_to_hand(path))
    except OSError as exc:
        message = f"{field}: cannot read {notebook!r}: {exc.strerror}"
        raise InvalidInput(message, field=field) from None
