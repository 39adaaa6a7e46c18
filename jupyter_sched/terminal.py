"""How ``jupyter sched`` talks to a terminal: tables, jobs and runs, run progress, errors
and exit codes.

People get tables and progress; scripts ask for ``--json``, which prints the API's own
models (the same field names as the REST API), and read the exit code (:class:`ExitCode`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import click

from .errors import MissingExtra, SchedError

if TYPE_CHECKING:  # `--help` does not need pydantic
    from pydantic import BaseModel

    from .compare import OutputView, RunComparison
    from .schemas import Job, Run

STATUS_COLOURS = {
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "lost": "red",
    "running": "cyan",
    "paused": "yellow",
}
#: The longest name a table shows before it shortens it.
NAME_WIDTH = 32


class ExitCode(IntEnum):
    """What ``jupyter sched`` exits with; scripts can tell these cases apart."""

    #: The command did what it was asked (for ``run``: the run succeeded).
    OK = 0
    #: The scheduler refused the request: no such job or run, a value it does not
    #: accept, a conflict with the current state. The message says which.
    REFUSED = 1
    #: The command line is wrong: an unknown option, a missing argument.
    USAGE = 2
    #: ``run``: the run ended without succeeding (failed, timed out, cancelled, lost).
    RUN_FAILED = 3
    #: Something the command needs is missing: a running worker, an optional package.
    UNAVAILABLE = 4


EXIT_CODES_HELP = """\b
Exit codes:
  0  success (for `run`: the run succeeded)
  1  the scheduler refused the request (no such job or run, a bad value, a conflict)
  2  the command line is wrong
  3  `run`: the run ended without succeeding
  4  something needed is missing: a running worker, an optional package
"""


class CommandError(click.ClickException):
    """One line on standard error (``Error: ...``); each subclass has its exit code."""


class Refused(CommandError):
    """The scheduler refused the request."""

    exit_code = ExitCode.REFUSED


class Unavailable(CommandError):
    """Something the command needs is missing."""

    exit_code = ExitCode.UNAVAILABLE


class SchedGroup(click.Group):
    """The ``jupyter sched`` group: the scheduler's errors become one line and an exit
    code here, for every command, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MissingExtra as exc:
            raise Unavailable(exc.message) from None
        except SchedError as exc:
            raise Refused(exc.message) from None


def json_option(command: Any) -> Any:
    """``--json``: print the API's model instead of a table (list and show commands)."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON with the REST API's field names."
    )(command)


def echo_json(model: BaseModel) -> None:
    """Print ``model`` as the REST API would send it."""
    click.echo(model.model_dump_json(indent=2))


def moment(value: datetime | None) -> str:
    """A time in the local timezone, to the second, with the zone named."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if value else "-"


def seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def status(text: str, width: int = 0) -> str:
    """A status word, coloured on a terminal, padded to ``width``."""
    return click.style(f"{text:<{width}}", fg=STATUS_COLOURS.get(text))


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], status_column: int) -> None:
    """Aligned columns with a header line; the cells of ``status_column`` are coloured."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    click.echo(
        click.style("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), bold=True)
    )
    for row in rows:
        cells = [
            status(cell, width) if i == status_column else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())


@dataclass(frozen=True)
class JobLine:
    """What a jobs table shows of a job (read by :func:`jupyter_sched.listing.job_lines`,
    or taken from the API's job with :meth:`of`)."""

    id: str
    name: str
    status: str
    trigger_description: str
    next_fire_at: datetime | None
    last_run_status: str | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> JobLine:
        """The line of the API's ``job``."""
        return cls(
            id=job.id,
            name=job.name,
            status=job.status,
            trigger_description=job.trigger_description,
            next_fire_at=job.next_fire_at,
            last_run_status=job.last_run.status if job.last_run else None,
            error=job.error,
        )


def jobs_table(jobs: Sequence[JobLine]) -> None:
    """The jobs of ``jobs list``, each trigger in the server's words."""
    if not jobs:
        click.echo(
            "No jobs yet. Schedule a notebook: jupyter sched jobs create NOTEBOOK --every 3600"
        )
        return
    rows = [
        [
            job.id,
            _shorten(job.name, NAME_WIDTH),
            job.status,
            _shorten(job.trigger_description, 40),
            moment(job.next_fire_at),
            job.last_run_status or "-",
        ]
        for job in jobs
    ]
    table(["ID", "NAME", "STATUS", "TRIGGER", "NEXT FIRE", "LAST RUN"], rows, status_column=2)
    for job in jobs:
        if job.error:
            click.echo(f"{job.id} is set aside: {job.error}")


@dataclass(frozen=True)
class RunLine:
    """What a runs table shows of a run (read by :func:`jupyter_sched.listing.run_lines`,
    or taken from the API's run with :meth:`of`)."""

    id: str
    status: str
    queued_at: datetime
    duration_seconds: float | None
    trigger: str
    notebook: str

    @classmethod
    def of(cls, run: Run) -> RunLine:
        """The line of the API's ``run``."""
        return cls(
            id=run.id,
            status=run.status,
            queued_at=run.queued_at,
            duration_seconds=run.duration_seconds,
            trigger=run.trigger,
            notebook=run.notebook,
        )


def runs_table(runs: Sequence[RunLine]) -> None:
    """The runs of ``runs list``."""
    if not runs:
        click.echo("No runs.")
        return
    rows = [
        [run.id, run.status, moment(run.queued_at), seconds(run.duration_seconds),
         run.trigger, run.notebook]
        for run in runs
    ]  # fmt: skip
    table(["ID", "STATUS", "QUEUED", "DURATION", "TRIGGER", "NOTEBOOK"], rows, status_column=1)


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """``name: value`` lines with the values aligned."""
    width = max(len(name) for name, _ in pairs) + 2
    for name, value in pairs:
        click.echo(f"{name + ':':<{width}}{value}")


def job_details(job: Job) -> None:
    """A job as ``jobs show`` prints it."""
    parameters = ", ".join(f"{k}={v!r}" for k, v in job.parameters.items()) or "-"
    retries = (
        f"{job.retries} (first after {job.retry_delay_seconds:g}s, ×{job.retry_backoff:g} each)"
        if job.retries
        else "none"
    )
    last = job.last_run
    last_text = f"{last.id} {status(last.status)} {moment(last.queued_at)}" if last else "-"
    fields(
        [
            ("job", f"{job.id}: {job.name}"),
            ("notebook", job.notebook),
            ("status", status(job.status)),
            ("trigger", job.trigger_description),
            ("next fire", moment(job.next_fire_at)),
            ("parameters", parameters),
            ("retries", retries),
            ("timeout", seconds(job.timeout_seconds) if job.timeout_seconds else "none"),
            ("overlap", job.overlap),
            ("outputs", ", ".join(job.output_formats)),
            ("queue", job.queue),
            ("tags", ", ".join(job.tags) or "-"),
            ("webhook", "on" if job.webhook else "off"),
            ("last run", last_text),
        ]
    )  # fmt: skip


def run_details(run: Run, files: dict[str, Path], failing_cell: str | None) -> None:
    """A run as ``runs show`` and ``run`` print it: status, error, and where its files are.

    ``failing_cell`` says where the error is, in the user's notebook and the executed one.
    """
    took = f" in {run.duration_seconds:.2f}s" if run.duration_seconds is not None else ""
    pairs = [("status", f"{status(run.status)}{took}")]
    if run.error:
        pairs.append(("error", f"{run.error.ename}: {run.error.evalue}"))
        if failing_cell:
            pairs.append(("where", failing_cell))
    pairs += [(name, str(path)) for name, path in files.items()]
    fields(pairs)


def run_facts(run: Run) -> None:
    """The facts of a run beyond its outcome (``runs show``)."""
    parameters = ", ".join(f"{k}={v!r}" for k, v in run.parameters.items()) or "-"
    fields(
        [
            ("run", f"{run.id}: {run.notebook}"),
            ("job", run.job_id or "- (a one-off run)"),
            ("trigger", f"{run.trigger}, attempt {run.attempt}"),
            ("parameters", parameters),
            ("queued", moment(run.queued_at)),
            ("started", moment(run.started_at)),
            ("finished", moment(run.finished_at)),
        ]
    )


class Progress:
    """Where a run is, on standard error, while ``jupyter sched run`` waits for it.

    On a terminal: one line redrawn in place, with a bar, the current cell of the user's
    notebook and the time elapsed (tqdm, which papermill already brings). Otherwise (a
    log file, CI): a plain line each time the state or the cell changes.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.interactive = self.stream.isatty()
        self._shown: tuple[str, int, int] | None = None
        self._bar: Any = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()

    def elapsed(self) -> str:
        total = int(time.monotonic() - self.started)
        return f"{total // 60:02d}:{total % 60:02d}"

    def show(self, state: str, done: int, total: int) -> None:
        """The run is in ``state``; ``done`` cells of ``total`` have started or ended."""
        cell = min(done + 1, total) if state == "running" else done
        where = f"cell {cell} of {total}" if total else ""
        if state == "running" and not total:
            where = "starting the kernel"
        if self.interactive:
            self._draw(state, cell, total, where)
            return
        if self._shown != (state, cell, total):
            self._shown = (state, cell, total)
            click.echo(f"[{self.elapsed()}] {state}{': ' + where if where else ''}", err=True)

    def _draw(self, state: str, cell: int, total: int, where: str) -> None:
        if self._bar is None:
            from tqdm import tqdm

            # A terminal that reports no size (0 × 0: some pseudo-terminals) would get
            # nothing from tqdm, which draws within the size it reads: 80 × 24 then.
            sized = _terminal_columns(self.stream) > 0
            self._bar = tqdm(
                total=max(total, 1),
                file=self.stream,
                bar_format="{desc} |{bar:24}| {elapsed}",
                dynamic_ncols=sized,
                ncols=None if sized else 80,
                nrows=None if sized else 24,
                leave=False,
            )
        self._bar.total = max(total, 1)
        self._bar.n = cell if total else 0
        self._bar.set_description_str(f"{state:<9} {where}".rstrip(), refresh=False)
        self._bar.refresh()


def _terminal_columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


def failing_cell(run: Run, output: Path | None) -> str | None:
    """Where the error of ``run`` is: in the user's notebook and in the executed one."""
    if run.error is None or run.error.cell_index is None:
        return None
    index = run.error.cell_index
    executed = f"cell {index + 1} of the executed notebook"
    if output is None:
        return executed
    import nbformat

    from .executor import notebook_cell_position

    try:
        cells = nbformat.read(str(output), as_version=4).cells
    except (OSError, ValueError):
        return executed
    position = notebook_cell_position(cells, index)
    if position is None:
        return executed
    return f"cell {position[0]} of {position[1]} of {Path(run.notebook).name} ({executed})"


def comparison(diff: RunComparison) -> None:
    """What changed from run a to run b: parameters, then each changed cell, with unified
    diffs of its source and text outputs and a line per changed image."""
    click.echo(click.style(f"a: {diff.a.id}  b: {diff.b.id}", bold=True))
    if diff.parameters:
        click.echo("parameters:")
        for change in diff.parameters:
            before = json.dumps(change.a) if change.in_a else "(absent)"
            after = json.dumps(change.b) if change.in_b else "(absent)"
            click.echo(f"  {change.name}: {before} -> {after}")
    else:
        click.echo("parameters: the same")
    for change in diff.values:
        before = json.dumps(change.a) if change.in_a else "(absent)"
        after = json.dumps(change.b) if change.in_b else "(absent)"
        click.echo(f"  value {change.name}: {before} -> {after}")
    counts = ", ".join(f"{n} {what}" for what, n in diff.summary.items() if n)
    click.echo(f"cells: {counts}")
    for cell in diff.cells:
        if cell.change == "unchanged":
            continue
        where = f"cell {_position(cell.index_a)} -> {_position(cell.index_b)}"
        click.echo(click.style(f"\n{where}: {cell.change}", bold=True))
        if cell.change != "modified" or cell.source_changed:
            _unified(cell.source_a or "", cell.source_b or "", "source")
        if cell.outputs_changed or cell.change != "modified":
            _outputs(cell.outputs_a, cell.outputs_b)


def _position(index: int | None) -> str:
    return "-" if index is None else str(index + 1)


def _unified(a: str, b: str, what: str) -> None:
    import difflib  # only to compare runs

    lines = difflib.unified_diff(
        a.splitlines(), b.splitlines(), f"a/{what}", f"b/{what}", lineterm="", n=2
    )
    for line in lines:
        colour = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        click.echo("  " + click.style(line, fg=colour))


def _outputs(a: Sequence[OutputView], b: Sequence[OutputView]) -> None:
    texts_a = "\n".join(o.text or "" for o in a if o.kind != "image")
    texts_b = "\n".join(o.text or "" for o in b if o.kind != "image")
    if texts_a != texts_b:
        _unified(texts_a, texts_b, "outputs")
    images_a = [o for o in a if o.kind == "image"]
    images_b = [o for o in b if o.kind == "image"]
    for i in range(max(len(images_a), len(images_b))):
        old = images_a[i] if i < len(images_a) else None
        new = images_b[i] if i < len(images_b) else None
        if old is not None and new is not None and old.data == new.data:
            continue
        click.echo(f"  image {i + 1}: {_image(old)} -> {_image(new)}")


def _image(view: OutputView | None) -> str:
    return "(none)" if view is None else f"{view.media_type}, {len(view.data or '')} chars"
