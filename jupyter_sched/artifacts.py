"""Run artifacts: the input snapshot, output notebook, HTML and log of each run.

Each run has a folder ``<artifacts_dir>/<run id>/``; the run row stores paths relative to
``artifacts_dir`` so the folder can move (or be shared between machines) as a whole.

Input snapshots are stored by content (:class:`InputStore`): one file per notebook
version, named by its SHA-256, shared by every run that fired with that version. A rush of
thousands of fires of a few notebooks reads and writes a few files, not thousands.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterable
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
        self.create()
        target = self.file(INPUT)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(notebook, tmp)
        tmp.replace(target)
        return target

    def create(self) -> None:
        """Create the run's folder, readable by this process's user only (on a hub, the
        worker then gives it to the run's owner)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def write_snapshot(self, content: bytes) -> Path:
        """Store ``content`` as the notebook the run executes."""
        self.create()
        target = self.file(INPUT)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(target)
        return target

    def give_to(self, uid: int, gid: int) -> None:
        """Make the run's folder and files those of user ``uid`` alone (0700 / 0600): the
        worker that wrote them may run as root, and other users must not read them."""
        if not self.path.is_dir():
            return
        os.chown(self.path, uid, gid)
        os.chmod(self.path, 0o700)
        for entry in self.path.iterdir():
            if entry.is_file() and not entry.is_symlink():
                os.chown(entry, uid, gid)
                os.chmod(entry, 0o600)

    def has_snapshot(self) -> bool:
        return self.file(INPUT).is_file()

    def remove(self) -> None:
        """Delete the run's folder and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)


#: The folder of content-addressed input snapshots, under ``artifacts_dir``.
INPUTS = "inputs"
#: An unreferenced input snapshot younger than this is kept: a fire may have written it
#: and not yet committed the runs that refer to it.
INPUT_GRACE_SECONDS = 3600.0


@dataclass(frozen=True)
class InputStore:
    """Notebook versions by content hash: ``<artifacts_dir>/inputs/<sha256>.ipynb``."""

    root: Path

    @property
    def path(self) -> Path:
        return self.root / INPUTS

    def store(self, notebook: Path) -> str:
        """Keep the notebook's current content (once per version); returns its reference.

        A version already stored is not written again, only marked as used now, so that
        the sweep of unreferenced versions leaves it alone while a fire is committing.
        """
        data = notebook.read_bytes()
        ref = f"{INPUTS}/{hashlib.sha256(data).hexdigest()}.ipynb"
        target = self.root / ref
        if target.is_file():
            os.utime(target)
            return ref
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return ref

    def sweep(self, referenced: Iterable[str], now: float | None = None) -> list[str]:
        """Delete the stored versions no run refers to (``referenced``: the references
        still in use) that were not used within :data:`INPUT_GRACE_SECONDS`."""
        keep = set(referenced)
        cutoff = (time.time() if now is None else now) - INPUT_GRACE_SECONDS
        removed: list[str] = []
        if not self.path.is_dir():
            return removed
        for file in self.path.iterdir():
            ref = f"{INPUTS}/{file.name}"
            if ref in keep or not file.name.endswith(".ipynb"):
                continue
            try:
                if file.stat().st_mtime < cutoff:
                    file.unlink()
                    removed.append(ref)
            except FileNotFoundError:
                continue
        return removed


def is_input_ref(ref: str | None) -> bool:
    """Whether ``ref`` names a stored notebook version (rather than a file of one run)."""
    return ref is not None and ref.startswith(f"{INPUTS}/")


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
