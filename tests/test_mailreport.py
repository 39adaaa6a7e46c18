"""Email reports delivered to a real SMTP server (aiosmtpd) and read back: the rendered
report inline, its chart as a CID image, inputs hidden on request, headers intact; and a
value alert of a real run mailed by the ticker's notifier."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import io
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import nbformat
import pytest
from aiosmtpd.controller import Controller
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_sched.config import Settings
from jupyter_sched.models import Notification
from jupyter_sched.notify import RunFiles, email_message, send_email
from jupyter_sched.service import Service
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_until

SECRET_INPUT = "secret_formula = 6 * 7"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1: its inbox and port."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def smtp(smtp_server: tuple[Inbox, int], tmp_path: Path) -> tuple[Inbox, Settings]:
    inbox, port = smtp_server
    return inbox, Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port)


@pytest.fixture
def settings(settings: Settings, smtp_server: tuple[Inbox, int]) -> Settings:
    """The deployment's settings (``tests/conftest.py``), sending mail to the test server."""
    return dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp_server[1])


def chart_png() -> bytes:
    fig = Figure(figsize=(6, 3), dpi=60)
    fig.add_subplot().plot([1, 3, 2, 5])
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def report_notebook(path: Path, *, failing: bool = False) -> Path:
    nb = new_notebook()
    nb.cells.append(new_markdown_cell("# Sales report"))
    table = new_code_cell(SECRET_INPUT + "\nsummary")
    table.outputs = [
        new_output(
            "execute_result",
            data={"text/html": "<table><tr><td>1234</td></tr></table>", "text/plain": "1234"},
            execution_count=1,
        )
    ]
    chart = new_code_cell("display(fig)")
    chart.outputs = [
        new_output(
            "display_data",
            data={"image/png": base64.b64encode(chart_png()).decode(), "text/plain": "<Figure>"},
        )
    ]
    nb.cells.extend([table, chart])
    if failing:
        broken = new_code_cell("1 / 0  # the broken step")
        broken.outputs = [
            new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
        ]
        nb.cells.append(broken)
    nbformat.write(nb, path)
    return path


def facts(name: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "event": "failure" if error else "success",
        "status": "failed" if error else "succeeded",
        "job": {"id": "J1", "name": name},
        "run": {"id": "R1", "notebook": "sales.ipynb", "trigger": "manual", "attempt": 1,
                "started_at": None, "finished_at": None, "duration_seconds": 1.5,
                "parameters": {}},
        "error": error,
        "links": {"run": "https://hub/sched/api/runs/R1", "output": None, "log": None},
    }  # fmt: skip


def test_report_email_has_the_html_inline_with_a_cid_chart_and_no_inputs(
    smtp: tuple[Inbox, Settings], tmp_path: Path
) -> None:
    inbox, settings = smtp
    output = report_notebook(tmp_path / "output.ipynb")
    target = {"kind": "email", "to": ["ann@example.org"], "on": ["success"],
              "report": {"hide_input": True, "attach": ["ipynb"]}}  # fmt: skip
    name = "daily sales\r\nBcc: mallory@example.org"
    send_email(target, facts(name), settings, RunFiles(output=output, html=None))

    assert len(inbox.messages) == 1
    envelope, message = inbox.envelopes[0], inbox.messages[0]
    assert envelope.rcpt_tos == ["ann@example.org"]  # the injected Bcc reached no one
    assert message["Bcc"] is None
    # The CR LF became a space (a folded header line starts with one more).
    assert (
        message["Subject"].strip()
        == "jupyter-sched: daily sales Bcc: mallory@example.org succeeded after 1.5s"
    )
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    html = body.get_content()
    assert "1234" in html and "Sales report" in html
    assert SECRET_INPUT not in html  # hide_input
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    assert images[0].get_content() == chart_png()
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and "daily sales" in plain.get_content()
    attached = [p.get_filename() for p in message.iter_attachments()]
    assert attached == ["report.ipynb"]


def test_inputs_are_shown_without_hide_input(tmp_path: Path) -> None:
    output = report_notebook(tmp_path / "output.ipynb")
    target = {"kind": "email", "to": ["ann@example.org"], "report": {}}
    message = email_message(target, facts("sales"), Settings(data_dir=tmp_path),
                            RunFiles(output=output, html=None))  # fmt: skip
    body = message.get_body(preferencelist=("html",))
    assert body is not None and "secret_formula" in body.get_content()


def test_failure_mail_shows_the_error_and_the_failing_cell(tmp_path: Path) -> None:
    output = report_notebook(tmp_path / "output.ipynb", failing=True)
    error = {"ename": "ZeroDivisionError", "evalue": "division by zero", "cell_index": 3}
    target = {"kind": "email", "to": ["ann@example.org"], "on": ["failure"],
              "report": {"hide_input": True}}  # fmt: skip
    message = email_message(target, facts("sales", error), Settings(data_dir=tmp_path),
                            RunFiles(output=output, html=None))  # fmt: skip
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        assert part is not None
        text = part.get_content()
        assert "ZeroDivisionError" in text and "1 / 0  # the broken step" in text


def test_a_report_above_the_bound_falls_back_to_summary_and_links(tmp_path: Path) -> None:
    output = report_notebook(tmp_path / "output.ipynb")
    target = {"kind": "email", "to": ["ann@example.org"],
              "report": {"hide_input": True, "max_bytes": 2_000}}  # fmt: skip
    message = email_message(target, facts("sales"), Settings(data_dir=tmp_path),
                            RunFiles(output=output, html=None))  # fmt: skip
    assert message.get_content_type() == "text/plain"
    text = message.get_content()
    assert "larger than this server sends by email" in text
    assert "https://hub/sched/api/runs/R1" in text


def test_a_value_alert_mails_the_value_once(
    service: Service,
    smtp_server: tuple[Inbox, int],
    start_worker: Callable[..., Worker],
    ticker: Any,
) -> None:
    inbox, _ = smtp_server
    start_worker()
    alert = {"kind": "email", "to": ["ann@example.org"], "on": ["value"],
             "value": "rows", "op": ">=", "threshold": 15}  # fmt: skip
    quiet = {**alert, "to": ["bob@example.org"], "op": ">", "threshold": 20}  # 20 > 20: no
    job = service.create_job(
        OWNER,
        {"name": "rows watch", "notebook": "tests/notebooks/report.ipynb",
         "parameters": {"days": 2}, "notifications": [alert, quiet]},
    )  # fmt: skip
    run = wait_for_run(service, service.run_job(OWNER, job.id).id, timeout=240)
    assert run.status == "succeeded" and run.values["rows"] == 20

    def delivered() -> list[Notification]:
        with service.db.read() as session:
            notes = session.query(Notification).filter_by(run_id=run.id).all()
            return notes if all(note.delivered_at for note in notes) else []

    # the condition is judged when the run ends: one outbox row, for the alert that holds
    wait_until(delivered, timeout=60, what="the value alert's delivery")
    (note,) = delivered()
    assert note.event == "value" and note.target["to"] == ["ann@example.org"]
    assert [envelope.rcpt_tos for envelope in inbox.envelopes] == [["ann@example.org"]]
    (message,) = inbox.messages
    assert message["Subject"] == "jupyter-sched: rows watch: rows = 20 (>= 15)"
    text = message.get_content()
    assert "rows = 20 (>= 15)" in text and f"run: {run.id}" in text
