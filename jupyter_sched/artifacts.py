"""Run artifacts: the input snapshot, output notebook, HTML and log of each run.

Each run has a folder ``<artifacts_dir>/<run id>/``; the run row stores paths relative to
``artifacts_dir`` so the folder can move (or be shared between machines) as a whole.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput, NotFound

INPUT = "input.ipynb"
OUTPUT = "output.ipynb"
HTML = "output.html"
LOG = "run.log"
PDF = "output.pdf"
THUMBNAIL_PNG = "thumbnail.png"
THUMBNAIL_SVG = "thumbnail.svg"
#: Most bytes of a log one read returns.
LOG_CHUNK = 1 << 20


@dataclass(frozen=True)
class RunFolder:
    """The files of one run."""

    root: Path
    run_id: str

    @property
    def path(self) -> Path:
        return self.root / self.run_id

    def file(self, name: str) -> Path:
        return self.path / name

    def ref(self, name: str) -> str:
        """The reference stored on the run row for file ``name``."""
        return f"{self.run_id}/{name}"

    def snapshot(self, notebook: Path) -> Path:
        """Copy the notebook as it is now; the run executes this copy."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.file(INPUT)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(notebook, tmp)
        tmp.replace(target)
        return target

    def has_snapshot(self) -> bool:
        return self.file(INPUT).is_file()

    def remove(self) -> None:
        """Delete the run's folder and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)


def resolve_ref(root: Path, ref: str | None, what: str) -> Path:
    """The file behind a run's reference, refusing anything outside the artifacts folder."""
    if not ref:
        raise NotFound(f"the run has no {what} yet")
    path = (root / ref).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise NotFound(f"the run's {what} is missing")
    return path


def read_log(path: Path, offset: int) -> tuple[str, int]:
    """The log at ``path`` from byte ``offset`` (at most :data:`LOG_CHUNK` bytes), and the
    offset to read from next.

    Chunks hold whole characters: one never ends inside a multi-byte character, and an
    ``offset`` inside one starts at the next character.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if offset > size:
            raise InvalidInput(
                f"offset: {offset} is past the end of the log ({size} bytes)", field="offset"
            )
        f.seek(offset)
        data = f.read(LOG_CHUNK)
    start, end = utf8_bounds(data)
    return data[start:end].decode("utf-8", errors="replace"), offset + end


def utf8_bounds(data: bytes) -> tuple[int, int]:
    """Where the whole UTF-8 characters of ``data`` start and end: it may begin with the
    tail of a character (skipped) and end with the head of one (left for the next read)."""
    start = 0
    while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
        start += 1  # continuation bytes of a character that began before
    end = len(data)
    for back in range(1, min(4, len(data) - start) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue
        # a lead byte: 110xxxxx starts 2 bytes, 1110xxxx 3, 11110xxx 4; ASCII is 1
        length = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        if back < length:
            end = len(data) - back
        break
    return start, end
