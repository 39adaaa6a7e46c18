"""Notifications about finished runs: a webhook POST (JSON, Slack or Teams) or an email.

When a run's outcome is settled (no retry follows), one outbox row per matching target is
written in the same transaction as the run's final state, so a notification is never
lost; a :class:`Notifier` thread next to the ticker delivers them, retrying with backoff.
A delivery failure is logged and retried, and never changes the run.
"""

from __future__ import annotations

import email.policy
import html
import json
import logging
import re
import smtplib
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .artifacts import resolve_ref
from .clock import utcnow
from .config import Settings
from .db import Database, updated
from .errors import NotFound, Unavailable
from .models import Job, Notification, Run, new_id
from .statuses import FAILURE_STATUSES
from .values import holds

log = logging.getLogger(__name__)

#: Seconds a webhook or SMTP server gets to answer.
DELIVERY_TIMEOUT = 10.0


def events_for(target: dict[str, Any], run: Run) -> list[str]:
    """Which of the target's ``on`` events the finished run triggers."""
    wanted = set(target.get("on", ["failure"]))
    events = []
    if "failure" in wanted and run.status in FAILURE_STATUSES:
        events.append("failure")
    if "success" in wanted and run.status == "succeeded":
        events.append("success")
    threshold = target.get("slower_than_seconds")
    if "slow" in wanted and threshold and (run.duration_seconds or 0) > threshold:
        events.append("slow")
    if "value" in wanted and _value_alert(target, run.values or {}):
        events.append("value")
    return events


def _value_alert(target: dict[str, Any], values: dict[str, Any]) -> bool:
    """Whether the target's condition on a recorded value holds (a value the run did not
    record sends nothing: a missing value is what checks are for)."""
    name = target.get("value")
    return name in values and holds(values[name], target.get("op", "<"), target.get("threshold"))


def queue_notifications(session: Session, run: Run, now: datetime) -> None:
    """Write the outbox rows for a run whose outcome is settled."""
    if run.job_id is None:
        return
    job = session.get(Job, run.job_id)
    if job is None:
        return
    for target in job.notifications:
        for event in events_for(target, run):
            session.add(
                Notification(
                    id=new_id(), run_id=run.id, target=target, event=event,
                    attempts=0, next_attempt_at=now,
                )
            )  # fmt: skip


def summary(
    run: Run,
    job: Job | None,
    event: str,
    settings: Settings,
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The facts a notification carries (the JSON webhook body); a ``value`` event also
    carries the value and the target's condition on it."""
    base = (settings.public_url or "").rstrip("/")
    api = f"{base}/sched/api/runs/{run.id}" if base else None
    facts = _facts(run, job, event, api)
    if event == "value" and target is not None:
        name = target.get("value")
        facts["value"] = {
            "name": name, "value": (run.values or {}).get(str(name)),
            "op": target.get("op"), "threshold": target.get("threshold"),
        }  # fmt: skip
    return facts


def _facts(run: Run, job: Job | None, event: str, api: str | None) -> dict[str, Any]:
    return {
        "event": event,
        "status": run.status,
        "job": {"id": job.id, "name": job.name} if job else None,
        "run": {
            "id": run.id, "notebook": run.notebook, "trigger": run.trigger,
            "attempt": run.attempt, "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at), "duration_seconds": run.duration_seconds,
            "parameters": run.parameters, "scheduled_for": _iso(run.scheduled_for),
            "values": run.values or {},
        },
        "error": run.error,
        "links": {
            "run": api,
            "output": f"{api}/output" if api else None,
            "log": f"{api}/log" if api else None,
            "thumbnail": f"{api}/thumbnail" if api and run.thumbnail_ref else None,
        },
    }  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def headline(facts: dict[str, Any]) -> str:
    """One line for people: what happened to which job (line breaks in the job's name or
    the error become spaces)."""
    name = facts["job"]["name"] if facts["job"] else facts["run"]["notebook"]
    duration = facts["run"]["duration_seconds"]
    took = f" after {duration:.1f}s" if duration is not None else ""
    text = f"jupyter-sched: {name} {facts['status']}{took}"
    if facts["event"] == "slow":
        text = f"jupyter-sched: {name} was slow ({duration:.1f}s)"
    if facts["event"] == "value" and "value" in facts:
        alert = facts["value"]
        shown = json.dumps(alert["value"])
        text = (
            f"jupyter-sched: {name}: {alert['name']} = {shown} ({alert['op']} {alert['threshold']})"
        )
    error = facts["error"]
    if error:
        text += f": {error['ename']}: {error['evalue']}"
    return " ".join(text.split())


def slack_text(text: str) -> str:
    """``text`` as literal Slack message text: ``<``, ``>`` and ``&`` are its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Characters of markdown constructs (emphasis, links, code, tables) inside a line; the
#: headline is one line that starts with plain text, so line-start markers cannot occur.
_MARKDOWN = re.compile(r"([\\`*_\[\]()~|])")


def teams_text(text: str) -> str:
    """``text`` as literal Teams card text, which is markdown with some HTML."""
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))


def webhook_body(target: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The body for the target's format."""
    fmt = target.get("format", "json")
    text = headline(facts)
    link = facts["links"]["output"]
    if fmt == "slack":
        escaped = slack_text(text)
        thumbnail = facts["links"].get("thumbnail")
        if thumbnail:
            escaped += f"\n<{thumbnail}|chart>"
        return {"text": f"{escaped}\n<{link}|output notebook>" if link else escaped}
    if fmt == "teams":
        card: dict[str, Any] = {"@type": "MessageCard", "@context": "https://schema.org/extensions"}
        card.update({"summary": text, "text": teams_text(text)})
        if link:
            card["potentialAction"] = [
                {"@type": "OpenUri", "name": "Output", "targets": [{"os": "default", "uri": link}]}
            ]
        thumbnail = facts["links"].get("thumbnail")
        if thumbnail:
            card["sections"] = [{"images": [{"image": thumbnail, "title": "chart"}]}]
        return card
    return facts


def send_webhook(target: dict[str, Any], facts: dict[str, Any]) -> None:
    """POST the message; raises on a connection error or a non-2xx answer."""
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked as http(s)
        target["url"],
        data=json.dumps(webhook_body(target, facts)).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "jupyter-sched"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


def send_email(
    target: dict[str, Any],
    facts: dict[str, Any],
    settings: Settings,
    files: RunFiles | None = None,
) -> None:
    """Send the message through the deployment's SMTP server; with ``report`` on the
    target, the rendered report of the run's output (``files``) is in its body."""
    if not settings.smtp_host:
        raise OSError("no SMTP server configured (JUPYTER_SCHED_SMTP_HOST)")
    message = email_message(target, facts, settings, files)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=DELIVERY_TIMEOUT) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)


@dataclass(frozen=True)
class RunFiles:
    """The files of a finished run that an email report is made from."""

    output: Path | None
    html: Path | None


def email_message(
    target: dict[str, Any],
    facts: dict[str, Any],
    settings: Settings,
    files: RunFiles | None = None,
) -> EmailMessage:
    """The notification email (default policy: a CR or LF in a header value is refused)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = headline(facts)
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(target["to"])
    lines = [headline(facts), ""]
    if facts["error"]:
        cell = facts["error"].get("cell_index")
        lines.append(f"Error in cell {cell}: {facts['error']['ename']}: {facts['error']['evalue']}")
    for name, link in facts["links"].items():
        if link:
            lines.append(f"{name}: {link}")
    lines.append(f"run: {facts['run']['id']}")
    text = "\n".join(lines) + "\n"
    report = target.get("report")
    if report is None:
        message.set_content(text)
        return message
    from .mailreport import report_message

    report_message(
        message, text, facts, report=report,
        output=files.output if files else None, html_output=files.html if files else None,
        max_bytes=int(report.get("max_bytes") or settings.report_max_bytes),
    )  # fmt: skip
    return message


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Delivery:
    """A notification due for an attempt, with what its message says."""

    note_id: str
    seen_due: datetime
    target: dict[str, Any]
    facts: dict[str, Any]
    files: RunFiles


def deliver_due(
    db: Database, settings: Settings, now: datetime, limit: int = 100
) -> DeliveryReport:
    """Try every notification whose attempt is due; record the outcome of each."""
    report = DeliveryReport()
    for delivery in _due_deliveries(db, settings, now, limit):
        # Take the notification for this attempt, so that two notifiers (two tickers on
        # a hub) never send it twice; if this one dies, it is due again after the lease.
        with db.write() as session:
            taken = updated(
                session,
                update(Notification)
                .where(
                    Notification.id == delivery.note_id,
                    Notification.next_attempt_at == delivery.seen_due,
                )
                .values(next_attempt_at=now + timedelta(seconds=3 * DELIVERY_TIMEOUT)),
            )
        if taken:
            _record_attempt(db, settings, delivery, _attempt(delivery, settings), now, report)
    return report


def _due_deliveries(db: Database, settings: Settings, now: datetime, limit: int) -> list[_Delivery]:
    with db.read() as session:
        due = session.scalars(
            select(Notification)
            .where(
                Notification.delivered_at.is_(None),
                Notification.failed_at.is_(None),
                Notification.next_attempt_at <= now,
            )
            .order_by(Notification.next_attempt_at)
            .limit(limit)
        ).all()
        work = []
        for note in due:
            run = session.get(Run, note.run_id)
            if run is None:
                continue
            job = session.get(Job, run.job_id) if run.job_id else None
            facts = summary(run, job, note.event, settings, note.target)
            files = RunFiles(
                output=_artifact(settings, run.output_ref), html=_artifact(settings, run.html_ref)
            )
            work.append(_Delivery(note.id, note.next_attempt_at, note.target, facts, files))
    return work


def _attempt(delivery: _Delivery, settings: Settings) -> str | None:
    """Send one notification; the error in words if it could not be delivered."""
    try:
        if delivery.target.get("kind") == "email":
            send_email(delivery.target, delivery.facts, settings, delivery.files)
        else:
            send_webhook(delivery.target, delivery.facts)
    except (OSError, smtplib.SMTPException, urllib.error.URLError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _record_attempt(
    db: Database,
    settings: Settings,
    delivery: _Delivery,
    error: str | None,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Count the attempt: delivered, due again after a backoff, or abandoned."""
    note_id = delivery.note_id
    with db.write() as session:
        note = session.get(Notification, note_id)
        if note is None:
            return
        note.attempts += 1
        if error is None:
            note.delivered_at = now
            report.delivered.append(note_id)
            return
        note.last_error = error
        where = delivery.target.get("url") or ", ".join(delivery.target.get("to", []))
        if note.attempts >= settings.notify_max_attempts:
            note.failed_at = now
            report.abandoned.append(note_id)
            log.error("notification %s to %s abandoned after %d attempts: %s",
                      note_id, where, note.attempts, error)  # fmt: skip
        else:
            delay = settings.notify_retry_seconds * 2 ** (note.attempts - 1)
            note.next_attempt_at = now + timedelta(seconds=delay)
            report.retried.append(note_id)
            log.warning("notification %s to %s failed (attempt %d, next in %gs): %s",
                        note_id, where, note.attempts, delay, error)  # fmt: skip


def _artifact(settings: Settings, ref: str | None) -> Path | None:
    try:
        return resolve_ref(settings.artifacts_dir, ref, "file")
    except NotFound:
        return None


class Notifier:
    """Delivers due notifications from a background thread."""

    def __init__(self, db: Database, settings: Settings, period: float = 1.0) -> None:
        self.db = db
        self.settings = settings
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sched-notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                deliver_due(self.db, self.settings, utcnow())
            except Unavailable:
                pass  # logged once by the database; the outbox waits for it
            except Exception:
                log.exception("notification delivery failed; trying again")
