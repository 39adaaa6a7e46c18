"""PDF renderings of executed notebooks (``output_formats: ["pdf"]``).

nbconvert's WebPDF exporter prints the notebook's HTML with a headless Chromium, the one
the deployment names (:attr:`~jupyter_sched.config.Settings.chromium_path`) or the
system's. The browser runs the notebook's own output scripts, so the worker never runs it
itself: :func:`render_pdf` starts a separate process the way a kernel is started (the
kernel's environment, without any scheduler credential; on hubs as the run's owner), which
reads the notebook on its standard input and writes the PDF on its standard output
(:mod:`jupyter_sched.pdfexport`).

This module imports neither nbconvert nor playwright: the server uses it to refuse a job
asking for PDF where none can be made (:func:`pdf_unavailable`), at create time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import kernel_environ
from .owners import OwnerAccount

#: Executables looked for on ``PATH`` when the deployment names none.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Longest one PDF rendering may take before it is stopped (and the run keeps no PDF).
PDF_TIMEOUT_SECONDS = 300.0
#: What to install for PDF outputs, said in every refusal.
INSTALL_HINT = (
    "install the PDF extra (pip install 'jupyter-sched[pdf]', which brings playwright) and "
    "Chromium (apt-get install chromium), and name the browser in the chromium_path setting "
    "(JUPYTER_SCHED_CHROMIUM_PATH) if it is not on PATH"
)


def find_chromium(configured: str | None) -> str | None:
    """The Chromium executable to use: ``configured`` (a path or a command name) when it
    is an executable, else (when nothing is configured) the first of :data:`CHROMIUM_NAMES`
    on ``PATH``; ``None`` when there is none."""
    if configured:
        return shutil.which(configured)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def pdf_unavailable(configured: str | None) -> str | None:
    """Why PDF outputs cannot be rendered here, with what to install; ``None`` when they
    can (playwright is importable and a Chromium executable is found)."""
    if importlib.util.find_spec("playwright") is None:
        return f"output_formats: 'pdf' needs playwright, which is not installed; {INSTALL_HINT}"
    if find_chromium(configured) is None:
        missing = (
            f"the configured Chromium {configured!r} is not an executable"
            if configured
            else f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)})"
        )
        return f"output_formats: 'pdf' needs Chromium: {missing}; {INSTALL_HINT}"
    return None


def render_pdf(
    notebook: Path,
    target: Path,
    *,
    chromium: str | None,
    account: OwnerAccount | None,
    log_line: Callable[[str], None],
    timeout: float = PDF_TIMEOUT_SECONDS,
) -> bool:
    """Render the executed notebook at ``notebook`` as a PDF at ``target``, in a process
    of its own (see the module's docstring); whether the PDF was written. Failures go to
    ``log_line`` only: a PDF never changes a run's outcome."""
    reason = pdf_unavailable(chromium)
    executable = find_chromium(chromium)
    if reason is not None or executable is None:
        log_line(f"PDF not made: {reason}")
        return False
    command = [sys.executable, "-m", "jupyter_sched.pdfexport", "--chromium", executable]
    # The kernel's environment (no scheduler setting, no credential); on hubs the owner's.
    options: dict[str, Any] = (
        {"env": kernel_environ(), "cwd": target.parent}
        if account is None
        else {"env": account.environ(), "cwd": account.home, **account.popen_kwargs()}
    )
    if not Path(options["cwd"]).is_dir():
        options["cwd"] = "/"
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the browser's processes go with it when it is stopped
        **options,
    )
    try:
        pdf, errors = proc.communicate(notebook.read_bytes(), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        log_line(f"PDF not made: rendering took longer than {timeout:g} s")
        return False
    finally:
        _kill_group(proc.pid)  # Chromium's helpers, should any outlive the exporter
    if proc.returncode != 0 or not pdf.startswith(b"%PDF"):
        last = errors.decode("utf-8", "replace").strip().splitlines()[-3:]
        log_line(f"PDF not made (exit {proc.returncode}): {' | '.join(last)}")
        return False
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(pdf)
    tmp.replace(target)
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
