"""Jobs that follow jobs, events, webhooks, notifications and per-job retention."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import nbformat
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from jupyter_sched.errors import (
    Conflict,
    DependencyCycle,
    InvalidInput,
    RateLimited,
    Unauthorized,
)
from jupyter_sched.lifecycle import claim, finish
from jupyter_sched.models import Job, Notification, Run
from jupyter_sched.notify import deliver_due
from jupyter_sched.retention import prune
from jupyter_sched.schemas import Run as RunOut
from jupyter_sched.service import Service
from jupyter_sched.statuses import Outcome
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_until

HELLO = "notebooks/hello.ipynb"
FAIL = "tests/notebooks/fail.ipynb"
PAYLOAD = "tests/notebooks/payload.ipynb"


def job(service: Service, name: str, notebook: str = HELLO, **fields: Any) -> str:
    return service.create_job(OWNER, {"name": name, "notebook": notebook, **fields}).id


def after(*jobs: str, condition: str = "success", **more: Any) -> dict[str, Any]:
    return {"trigger": {"kind": "after", "jobs": list(jobs), "condition": condition, **more}}


def runs_of(service: Service, job_id: str) -> list[RunOut]:
    return service.list_runs(OWNER, job_id=job_id).runs


def settle(service: Service) -> None:
    """Wait until no run is queued or running, seen in one read of the history.

    A run's dependents are inserted in the transaction that finishes it, so once one
    snapshot shows nothing queued or running, no run of these workflows is still to come.
    (Two reads, one per status, could miss a dependent made between them.)
    """

    def busy() -> int:
        with service.db.read() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Run)
                    .where(Run.status.in_(("queued", "running")))
                )
                or 0
            )

    wait_until(lambda: busy() == 0, 60, "all runs final")


def outputs(service: Service, run_id: str) -> str:
    nb = nbformat.read(service.run_output(OWNER, run_id), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_chain_and_fan_in_run_once_per_fire(service: Service, worker: Worker) -> None:
    a = job(service, "A")
    b = job(service, "B", **after(a))
    c = job(service, "C", **after(b, condition="completion"))
    d = job(service, "D", **after(a, b))
    first = service.run_job(OWNER, a)
    settle(service)
    a_run = wait_for_run(service, first.id)
    assert a_run.status == "succeeded"
    (b_run,) = runs_of(service, b)
    (c_run,) = runs_of(service, c)
    (d_run,) = runs_of(service, d)
    assert (b_run.trigger, b_run.caused_by, b_run.status) == ("dependency", [a_run.id], "succeeded")
    assert c_run.caused_by == [b_run.id] and c_run.status == "succeeded"
    assert d_run.caused_by == [a_run.id, b_run.id] and d_run.status == "succeeded"
    assert {r.chain_id for r in (a_run, b_run, c_run, d_run)} == {a_run.id}


def test_failure_runs_only_what_its_condition_allows(service: Service, worker: Worker) -> None:
    a = job(service, "A fails", FAIL)
    b = job(service, "B on success", **after(a))
    c = job(service, "C on B's completion", **after(b, condition="completion"))
    d = job(service, "D after A and B", **after(a, b))
    e = job(service, "E on failure", **after(a, condition="failure"))
    f = job(service, "F on completion", **after(a, condition="completion"))
    wait_for_run(service, service.run_job(OWNER, a).id)
    settle(service)
    assert runs_of(service, b) == runs_of(service, c) == runs_of(service, d) == []
    assert [r.status for r in runs_of(service, e)] == ["succeeded"]
    assert [r.status for r in runs_of(service, f)] == ["succeeded"]


def test_upstream_results_reach_a_notebook_that_declares_them(
    service: Service, worker: Worker
) -> None:
    a = job(service, "A", parameters={"name": "upstream"})
    b = job(service, "B", PAYLOAD, **after(a, pass_results=True))
    c = job(service, "C", HELLO, **after(a, pass_results=True))
    a_run = wait_for_run(service, service.run_job(OWNER, a).id)
    settle(service)
    (b_run,) = runs_of(service, b)
    text = outputs(service, b_run.id)
    output = service.settings.artifacts_dir.resolve() / a_run.id / "output.ipynb"
    assert f"upstream: {a_run.id} {output} {{'name': 'upstream'}}" in text
    assert b_run.parameters["upstream_output_path"] == str(output)
    (c_run,) = runs_of(service, c)  # hello.ipynb declares none of them: nothing injected
    assert c_run.status == "succeeded" and c_run.parameters == {}


def test_paused_downstream_does_not_fire(service: Service, worker: Worker) -> None:
    a = job(service, "A")
    b = job(service, "B", **after(a))
    service.pause_job(OWNER, b)
    wait_for_run(service, service.run_job(OWNER, a).id)
    settle(service)
    assert runs_of(service, b) == []


def test_cycles_are_refused_with_the_cycle_named(service: Service) -> None:
    a = job(service, "A")
    b = job(service, "B", **after(a))
    c = job(service, "C", **after(b))
    with pytest.raises(DependencyCycle) as cycle:
        service.update_job(OWNER, a, after(c))
    assert cycle.value.field == "trigger.jobs" and cycle.value.status_code == 400
    assert f"A ({a}) → B ({b}) → C ({c}) → A ({a})" in cycle.value.message
    with pytest.raises(DependencyCycle, match="after itself"):
        service.update_job(OWNER, a, after(a))
    with pytest.raises(InvalidInput, match="no job"):
        job(service, "X", **after("01NOSUCHJOB"))
    with pytest.raises(InvalidInput, match="no job"):
        service.create_job("bob", {"name": "theirs", "notebook": HELLO, **after(a)})
    assert service.get_job(OWNER, a).trigger.kind == "manual"


def test_after_triggers_name_their_upstream_jobs(service: Service) -> None:
    daily = job(service, "daily sales")
    weekly = job(service, "weekly report")
    created = service.create_job(
        OWNER, {"name": "digest", "notebook": HELLO, **after(daily, weekly, condition="failure")}
    )
    words = "after 'daily sales' and 'weekly report' have failed"
    assert created.trigger_description == words
    assert service.get_job(OWNER, created.id).trigger_description == words
    listed = {j.id: j for j in service.list_jobs(OWNER).jobs}
    assert listed[created.id].trigger_description == words
    preview = service.preview({"trigger": after(daily)["trigger"]}, owner=OWNER)
    assert preview.description == "after 'daily sales' has succeeded"
    # Another user's preview does not learn the names of this user's jobs.
    assert service.preview({"trigger": after(daily)["trigger"]}, owner="bob").description == (
        f"after '{daily}' has succeeded"
    )
    service.update_job(OWNER, daily, {"name": "daily sales v2"})
    assert service.get_job(OWNER, created.id).trigger_description.startswith(
        "after 'daily sales v2' and 'weekly report'"
    )


def test_deleting_an_upstream_needs_force(service: Service) -> None:
    a = job(service, "A")
    b = job(service, "B", **after(a))
    with pytest.raises(Conflict, match="B"):
        service.delete_job(OWNER, a)
    service.delete_job(OWNER, a, force=True)
    assert service.get_job(OWNER, b).trigger.kind == "manual"


def test_events_fire_the_callers_matching_jobs(service: Service, worker: Worker) -> None:
    event = {"trigger": {"kind": "event", "event": "sales.loaded"}}
    mine = job(service, "mine", PAYLOAD, **event)
    plain = job(service, "plain", HELLO, **event)
    job(service, "other event", HELLO, trigger={"kind": "event", "event": "sales.other"})
    theirs = service.create_job("bob", {"name": "bob's", "notebook": HELLO, **event}).id
    runs = service.fire_event(OWNER, "sales.loaded", {"rows": 3})
    assert sorted(r.job_id or "" for r in runs) == sorted([mine, plain])
    assert all(r.trigger == "event" for r in runs)
    settle(service)
    assert "payload: {'rows': 3}" in outputs(service, runs_of(service, mine)[0].id)
    assert service.list_runs("bob", job_id=theirs).runs == []
    assert service.fire_event(OWNER, "nobody.listens") == []
    with pytest.raises(InvalidInput, match="event"):
        service.fire_event(OWNER, "bad name with spaces")


def test_webhooks(service: Service, worker: Worker) -> None:
    limited = Service(
        service.settings.replace(webhook_rate_per_minute=3), service.db, service.queues
    )
    target = job(limited, "hooked", PAYLOAD)
    token = limited.create_webhook(OWNER, target)
    assert limited.get_job(OWNER, target).webhook is True
    with service.db.read() as session:
        stored = session.scalar(select(Job.webhook_token_hash).where(Job.id == target))
    assert stored and token not in stored and len(stored) == 64

    run = limited.fire_webhook(target, token, {"source": "ci"})
    assert run.trigger == "webhook"
    assert "payload: {'source': 'ci'}" in outputs(limited, wait_for_run(limited, run.id).id)
    with pytest.raises(Unauthorized):
        limited.fire_webhook(target, token + "x")
    with pytest.raises(Unauthorized):
        limited.fire_webhook("01NOSUCHJOB", token)
    rotated = limited.create_webhook(OWNER, target)
    with pytest.raises(Unauthorized):
        limited.fire_webhook(target, token)
    limited.fire_webhook(target, rotated)
    limited.fire_webhook(target, rotated)
    with pytest.raises(RateLimited):
        limited.fire_webhook(target, rotated)
    assert len(runs_of(limited, target)) == 3  # refused calls fired nothing


class Inbox(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Inbox.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[str]:
    Inbox.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def test_failure_notifications_by_webhook_and_email(
    service: Service,
    start_worker: Callable[..., Worker],
    inbox: str,
    mailbox: tuple[Mailbox, int],
) -> None:
    # no ticker, so no background notifier: this test delivers by hand
    start_worker()
    box, port = mailbox
    settings = service.settings.replace(smtp_host="127.0.0.1", smtp_port=port)
    unreachable = f"http://127.0.0.1:{free_port()}/nobody"
    failing = job(
        service, "nightly load", FAIL,
        notifications=[
            {"kind": "webhook", "url": inbox},
            {"kind": "webhook", "url": inbox, "format": "slack"},
            {"kind": "email", "to": ["ops@example.org"]},
            {"kind": "webhook", "url": unreachable},
        ],
    )  # fmt: skip
    run = wait_for_run(service, service.run_job(OWNER, failing, {"message": "disk full"}).id)
    assert run.status == "failed"
    report = deliver_due(service.db, settings, datetime.now(UTC))
    assert len(report.delivered) == 3 and len(report.retried) == 1
    plain, slack = Inbox.received
    assert plain["status"] == "failed" and plain["error"]["evalue"] == "disk full"
    assert plain["job"]["name"] == "nightly load" and plain["run"]["id"] == run.id
    assert "nightly load failed" in slack["text"] and "ValueError: disk full" in slack["text"]
    (mail,) = box.messages
    assert mail["To"] == "ops@example.org" and "nightly load failed" in mail["Subject"]
    assert "ValueError: disk full" in mail.get_payload()
    # the unreachable one is retried later with backoff, then given up; the run is untouched
    later = datetime.now(UTC) + timedelta(hours=2)
    for _ in range(settings.notify_max_attempts):
        deliver_due(service.db, settings, later)
        later += timedelta(hours=2)
    with service.db.read() as session:
        note = session.scalars(
            select(Notification).where(Notification.failed_at.is_not(None))
        ).one()
    assert note.attempts == settings.notify_max_attempts and "Connection refused" in (
        note.last_error or ""
    )
    assert service.get_run(OWNER, run.id).status == "failed"


def test_success_and_slow_notifications(
    service: Service, start_worker: Callable[..., Worker], inbox: str
) -> None:
    start_worker()
    target = job(
        service, "report", HELLO,
        notifications=[{"kind": "webhook", "url": inbox, "on": ["success", "slow"],
                        "slower_than_seconds": 0.001}],
    )  # fmt: skip
    wait_for_run(service, service.run_job(OWNER, target).id)
    deliver_due(service.db, service.settings, datetime.now(UTC))
    assert sorted(m["event"] for m in Inbox.received) == ["slow", "success"]


def test_notifications_carry_names_and_errors_as_text(
    service: Service,
    start_worker: Callable[..., Worker],
    inbox: str,
    mailbox: tuple[Mailbox, int],
) -> None:
    start_worker()
    box, port = mailbox
    settings = service.settings.replace(
        smtp_host="127.0.0.1", smtp_port=port, public_url="https://jupyter.example/user/a/"
    )
    name = "<!channel> <https://evil.example|Open output>\r\nBcc: victim@example.org"
    failing = job(
        service, name, FAIL,
        notifications=[
            {"kind": "webhook", "url": inbox, "format": "slack"},
            {"kind": "webhook", "url": inbox, "format": "teams"},
            {"kind": "email", "to": ["ops@example.org"]},
        ],
    )  # fmt: skip
    message = "see [here](https://evil.example) & <b>*now*</b>"
    run = wait_for_run(service, service.run_job(OWNER, failing, {"message": message}).id)
    assert run.status == "failed"
    report = deliver_due(service.db, settings, datetime.now(UTC))
    assert len(report.delivered) == 3, (report, box.messages)

    slack, teams = sorted(Inbox.received, key=lambda body: "@type" in body)
    assert slack["text"].startswith(
        "jupyter-sched: &lt;!channel&gt; &lt;https://evil.example|Open output&gt; Bcc:"
    )
    assert "see [here](https://evil.example) &amp; &lt;b&gt;*now*&lt;/b&gt;" in slack["text"]
    # the one link is the scheduler's own
    assert slack["text"].count("<") == 1 and slack["text"].endswith(
        f"<https://jupyter.example/user/a/sched/api/runs/{run.id}/output|output notebook>"
    )
    card = teams["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example\\|Open output&gt;" in card
    assert "see \\[here\\]\\(https://evil.example\\) &amp; &lt;b&gt;\\*now\\*&lt;/b&gt;" in card
    assert "<" not in card and teams["summary"].startswith("jupyter-sched: <!channel>")

    (mail,) = box.messages  # the line break in the name no longer fails every delivery
    subject = " ".join(str(mail["Subject"]).split())  # unfolded
    assert "<!channel> <https://evil.example|Open output> Bcc: victim@example.org" in subject
    assert mail["Bcc"] is None and mail["To"] == "ops@example.org"


def test_slack_and_teams_messages_link_the_thumbnail_of_a_run_that_has_one(
    service: Service, start_worker: Callable[..., Worker], inbox: str
) -> None:
    start_worker()
    public = "https://jupyter.example/user/a/"
    settings = service.settings.replace(public_url=public)
    chats = [{"kind": "webhook", "url": inbox, "format": f, "on": ["success"]}
             for f in ("slack", "teams")]  # fmt: skip
    chart = job(service, "chart", "notebooks/sales_report.ipynb", notifications=chats)
    plain = job(service, "plain", HELLO, notifications=chats)
    runs = {
        name: wait_for_run(service, service.run_job(OWNER, job_id).id, timeout=240)
        for name, job_id in (("chart", chart), ("plain", plain))
    }
    assert [(r.status, r.has_thumbnail) for r in runs.values()] == [
        ("succeeded", True),
        ("succeeded", False),
    ]
    report = deliver_due(service.db, settings, datetime.now(UTC))
    assert len(report.delivered) == 4, report

    def messages(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        mine = [m for m in Inbox.received if name in m.get("text", "")]
        slack, teams = sorted(mine, key=lambda body: "@type" in body)
        return slack, teams

    api = f"{public}sched/api/runs"
    slack, teams = messages("chart")
    thumbnail = f"{api}/{runs['chart'].id}/thumbnail"
    assert f"\n<{thumbnail}|chart>\n" in slack["text"]
    assert teams["sections"] == [{"images": [{"image": thumbnail, "title": "chart"}]}]
    slack, teams = messages("plain")
    assert "thumbnail" not in slack["text"] and slack["text"].count("<") == 1
    assert slack["text"].endswith(f"<{api}/{runs['plain'].id}/output|output notebook>")
    assert "sections" not in teams and "thumbnail" not in json.dumps(teams)


def test_job_retention_overrides_the_deployment(service: Service) -> None:
    keep3 = job(service, "keep 3", retention_runs=3)
    other = job(service, "keeps all")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for job_id in (keep3, other):
        for i in range(10):
            at = t0 + timedelta(hours=i)
            run = service.run_job(OWNER, job_id, now=at)
            assert claim(service.db, run.id, "w", at)
            finish(service.db, run.id, Outcome("succeeded"), at, max_retry_delay=1)
    running = service.run_job(OWNER, keep3, now=t0)
    assert claim(service.db, running.id, "w", t0)
    report = prune(service.db, service.settings, t0 + timedelta(days=1))
    assert len(report.run_ids) == 7
    assert len(runs_of(service, keep3)) == 4  # the newest 3 finished ones and the running one
    assert len(runs_of(service, other)) == 10
