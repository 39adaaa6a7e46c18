"""Run artifacts: the input snapshot, output notebook, HTML and log of each run.

Each run has a folder ``<artifacts_dir>/<run id>/``; the run row stores paths relative to
``artifacts_dir`` so the folder can move (or be shared between machines) as a whole.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import NotFound

INPUT = "input.ipynb"
OUTPUT = "output.ipynb"
HTML = "output.html"
LOG = "run.log"


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
