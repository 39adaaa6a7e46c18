"""A claimed run made ready to execute: whose account runs it, the notebook as it was at
fire time, where it runs, and its parameters with the values the scheduler offers.

The worker (:mod:`jupyter_sched.worker`) claims a run and heartbeats it; this module turns
the run's row into the files and parameters of its
:class:`~jupyter_sched.executor.Execution`, or into the failed outcome that says why it
cannot run (an owner without an account, a notebook gone before its input was kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import INPUT, LOG, RunFolder, is_input_ref
from .config import Settings
from .errors import NoSuchOwner, SchedError
from .models import Run
from .notebooks import notebook_parameters, notebook_root, resolve_notebook
from .owners import OwnerAccount, owner_account, read_as
from .reports import logical_time_text
from .statuses import Outcome
from .workflows import (
    RESERVED_PARAMETERS,
    SCHEDULED_FOR_PARAMETER,
    UPSTREAM_OUTPUT,
    upstream_output_path,
)


@dataclass
class Prepared:
    """What the execution of a claimed run needs."""

    #: The notebook to execute: the stored fire-time version, or a copy in the run folder.
    source: Path
    #: The folder the kernel starts in (the notebook's own, as when the user runs it).
    cwd: Path
    parameters: dict[str, Any]
    #: The owner's Unix account when runs execute as their owner, else None.
    account: OwnerAccount | None


def prepare(
    settings: Settings,
    run: Run,
    job_trigger: dict[str, Any] | None,
    folder: RunFolder,
    refs: dict[str, Any],
) -> Prepared | Outcome:
    """The run ready to execute, or the failed outcome that says why it cannot run (also
    written to its log). ``refs`` receives the run's files and effective parameters."""
    account = None
    if settings.run_as_owner:
        try:
            account = owner_account(run.owner)
        except NoSuchOwner as exc:
            return _cannot_run(folder, "NoSuchOwner", exc.message)
        # The run's files are its owner's alone; this worker (root) still writes them.
        account.own(folder.path, 0o700)
        account.own(folder.file(LOG), 0o600)
    # The input as it was at fire time: the version stored by content when the run was
    # made (shared by the runs of that version), else a copy in the run's folder.
    ref = run.input_ref
    stored = settings.artifacts_dir / ref if ref and is_input_ref(ref) else None
    source = stored if stored is not None and stored.is_file() else folder.file(INPUT)
    if source != stored:
        refs["input_ref"] = folder.ref(INPUT)
    cwd = folder.path
    try:
        # The path is checked again at execution time: a symlink swapped in after the
        # job was created must not lead outside the root.
        root = notebook_root(run.root_dir, settings.root_dir)
        notebook = resolve_notebook(root, run.notebook)
        cwd = notebook.parent
        if not source.is_file():
            if account is None:
                folder.snapshot(notebook)
            else:  # read with the owner's rights, never the worker's
                folder.write_snapshot(read_as(account, notebook))
    except SchedError as exc:
        if not source.is_file():
            return _cannot_run(folder, type(exc).__name__, exc.message)
    parameters = _parameters(settings, run, job_trigger, source)
    if parameters != run.parameters:
        refs["parameters"] = parameters
    return Prepared(source, cwd, parameters, account)


def _parameters(
    settings: Settings, run: Run, job_trigger: dict[str, Any] | None, source: Path
) -> dict[str, Any]:
    """The run's parameters with the run's date, and the values the scheduler offers
    (upstream results, event payloads) only to notebooks that declare them."""
    parameters = dict(run.parameters)
    if run.scheduled_for is not None:
        parameters[SCHEDULED_FOR_PARAMETER] = logical_time_text(run.scheduled_for, job_trigger)
    reserved = [name for name in RESERVED_PARAMETERS if name in parameters]
    if not reserved:
        return parameters
    try:
        declared = {p.name for p in notebook_parameters(source, kernel=run.kernel)}
    except SchedError:
        declared = set()
    parameters = {k: v for k, v in parameters.items() if k not in reserved or k in declared}
    if parameters.get(UPSTREAM_OUTPUT):
        parameters[UPSTREAM_OUTPUT] = upstream_output_path(
            settings.artifacts_dir, parameters[UPSTREAM_OUTPUT]
        )
    return parameters


def _cannot_run(folder: RunFolder, ename: str, message: str) -> Outcome:
    with open(folder.file(LOG), "a", encoding="utf-8") as f:
        f.write(f"cannot run: {message}\n")
    return Outcome("failed", ename, message)
