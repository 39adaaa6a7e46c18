"""PDF renderings: which Chromium prints them, what is said when none can, and a real
print of a notebook by the system's Chromium in a process of its own."""

from __future__ import annotations

import io
import os
import shutil
import stat
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from pypdf import PdfReader

from jupyter_sched.pdf import find_chromium, pdf_unavailable, render_pdf

pytestmark = pytest.mark.skipif(
    find_chromium(None) is None, reason="needs Chromium (make system-deps installs it)"
)


def report_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.cells.append(new_markdown_cell("# Quarterly numbers\n\nPrinted for the board."))
    cell = new_code_cell("print(total)")
    cell.outputs = [new_output("stream", name="stdout", text="total: 48213\n")]
    nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_a_configured_path_is_used_or_reported_missing(tmp_path: Path) -> None:
    system = find_chromium(None)
    assert system is not None and os.access(system, os.X_OK)
    assert find_chromium(system) == system
    assert find_chromium(str(tmp_path / "chromium")) is None
    assert pdf_unavailable(system) is None

    reason = pdf_unavailable(str(tmp_path / "chromium"))
    assert reason is not None
    assert reason.startswith("output_formats: ")
    assert str(tmp_path / "chromium") in reason and "apt-get install chromium" in reason

    # A file that is there but not executable is no browser either.
    plain = tmp_path / "not-a-browser"
    plain.write_text("")
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert find_chromium(str(plain)) is None


def test_render_pdf_prints_the_notebook_with_the_configured_chromium(tmp_path: Path) -> None:
    notebook = report_notebook(tmp_path / "report.ipynb")
    target = tmp_path / "report.pdf"
    lines: list[str] = []
    assert render_pdf(notebook, target, chromium=find_chromium(None), account=None,
                      log_line=lines.append)  # fmt: skip
    data = target.read_bytes()
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Quarterly numbers" in text and "Printed for the board." in text
    assert "total: 48213" in text
    assert lines == []
    assert not target.with_suffix(".tmp").exists()


def test_a_browser_that_fails_leaves_no_pdf_and_says_why(tmp_path: Path) -> None:
    notebook = report_notebook(tmp_path / "report.ipynb")
    target = tmp_path / "report.pdf"
    lines: list[str] = []
    false = shutil.which("false")
    assert false is not None
    assert not render_pdf(notebook, target, chromium=false, account=None, log_line=lines.append)
    assert not target.exists()
    assert len(lines) == 1 and lines[0].startswith("PDF not made (exit 1)")

    lines.clear()
    missing = str(tmp_path / "chromium")
    assert not render_pdf(notebook, target, chromium=missing, account=None,
                          log_line=lines.append)  # fmt: skip
    assert not target.exists()
    assert lines and missing in lines[0]


def test_the_browser_gets_no_scheduler_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A standalone worker has the deployment in its environment; the browser that prints
    # (and runs the outputs' scripts) must not. This "browser" writes down what it got.
    monkeypatch.setenv("JUPYTER_SCHED_DB_URL", "postgresql://sched:hunter2@db/sched")
    monkeypatch.setenv("JUPYTER_SCHED_SECRET", "signing-secret")
    monkeypatch.setenv("JUPYTER_TOKEN", "server-token")
    monkeypatch.setenv("REPORT_COLOUR", "teal")
    seen = tmp_path / "environment"
    browser = tmp_path / "chromium"
    browser.write_text(f"#!/bin/sh\nenv > '{seen}'\nexit 1\n")
    browser.chmod(0o755)
    lines: list[str] = []
    notebook = report_notebook(tmp_path / "report.ipynb")
    assert not render_pdf(notebook, tmp_path / "report.pdf", chromium=str(browser),
                          account=None, log_line=lines.append)  # fmt: skip
    environment = seen.read_text()
    assert "REPORT_COLOUR=teal" in environment  # the user's own variables are there
    for secret in ("hunter2", "signing-secret", "server-token", "JUPYTER_SCHED_"):
        assert secret not in environment
    assert lines and lines[0].startswith("PDF not made")
