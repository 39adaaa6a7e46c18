"""The options of ``jupyter sched jobs create`` and ``jobs update``, and how they become
the fields of a job in the REST API's terms (absent option: field not given)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click


def parse_value(text: str) -> Any:
    """A ``-p`` value: JSON when it parses (numbers, lists, dicts, true/null), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _read_json_object(source: str | None, what: str) -> dict[str, Any]:
    """The JSON object in file ``source`` (``-``: standard input); ``{}`` without one."""
    if source is None:
        return {}
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        value = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"cannot read {source}: {exc}", param_hint=what) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must hold a JSON object", param_hint=what)
    return value


def _trigger_from_options(
    cron: str | None,
    every: float | None,
    at: str | None,
    after: tuple[str, ...],
    when: str,
    pass_results: bool,
    event: str | None,
    timezone: str | None,
) -> dict[str, Any] | None:
    chosen = [
        name
        for name, given in (
            ("--cron", cron), ("--every", every), ("--at", at), ("--after", after),
            ("--on-event", event),
        )
        if given
    ]  # fmt: skip
    if len(chosen) > 1:
        raise click.UsageError(f"choose one trigger, not {' and '.join(chosen)}")
    if cron:
        return {"kind": "cron", "cron": cron, **({"timezone": timezone} if timezone else {})}
    if every:
        return {"kind": "interval", "every_seconds": every}
    if at:
        return {"kind": "once", "at": at}
    if after:
        return {"kind": "after", "jobs": list(after), "condition": when,
                "pass_results": pass_results}  # fmt: skip
    if event:
        return {"kind": "event", "event": event}
    return None


def _notifications_from_options(
    webhooks: tuple[str, ...], emails: tuple[str, ...], on: str | None, slower_than: float | None
) -> list[dict[str, Any]]:
    common: dict[str, Any] = {}
    if on:
        common["on"] = [part.strip() for part in on.split(",") if part.strip()]
    if slower_than is not None:
        common["slower_than_seconds"] = slower_than
    targets = [{"kind": "webhook", "url": url, **common} for url in webhooks]
    if emails:
        targets.append({"kind": "email", "to": list(emails), **common})
    return targets


def job_options(command: Any) -> Any:
    """The options of ``jobs create`` and ``jobs update`` (each maps to a field of the API)."""
    options = [
        click.option("--name", help="Name shown in lists (default: the notebook's name)."),
        click.option("-p", "--param", "params", nargs=2, multiple=True,
                     metavar="NAME VALUE", help="A parameter (JSON value, or text)."),
        click.option("--cron", help="Cron schedule: 5 fields, or 6 with seconds last."),
        click.option("--timezone", help="Timezone of --cron (default: UTC)."),
        click.option("--every", type=float, metavar="SECONDS", help="Fire every N seconds."),
        click.option("--at", metavar="ISO-TIME", help="Fire once, at this time with offset."),
        click.option("--after", multiple=True, metavar="JOB_ID",
                     help="Run after this job (repeat for several)."),
        click.option("--when", type=click.Choice(["success", "failure", "completion"]),
                     default="success", show_default=True, help="With --after."),
        click.option("--pass-results", is_flag=True,
                     help="With --after: hand the upstream run's results to the notebook."),
        click.option("--on-event", "event", metavar="NAME", help="Fire when event NAME is posted."),
        click.option("--retries", type=int),
        click.option("--retry-delay", type=float, metavar="SECONDS"),
        click.option("--timeout", type=float, metavar="SECONDS"),
        click.option("--overlap", type=click.Choice(["allow", "skip", "queue", "replace"])),
        click.option("--misfire", type=click.Choice(["run_once", "skip"])),
        click.option("--queue"),
        click.option("--kernel"),
        click.option("--tag", "tags", multiple=True),
        click.option("--html", is_flag=True, default=None, help="Also keep an HTML output."),
        click.option("--notify-webhook", "webhooks", multiple=True, metavar="URL"),
        click.option("--notify-email", "emails", multiple=True, metavar="ADDRESS"),
        click.option("--notify-on", metavar="LIST",
                     help="Comma-separated: failure, success, slow (default: failure)."),
        click.option("--slower-than", type=float, metavar="SECONDS",
                     help="With --notify-on slow: the duration that counts as slow."),
        click.option("--keep-days", type=float, help="Delete this job's runs after N days."),
        click.option("--keep-runs", type=int, help="Keep only this job's newest N runs."),
        click.option("--json", "json_source", metavar="FILE",
                     help="Fields as in the REST API, from a JSON file ('-': stdin); "
                     "the options above take precedence."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def job_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The API fields the options of :func:`job_options` set (absent: not given)."""
    fields = _read_json_object(options.pop("json_source"), "--json")
    trigger = _trigger_from_options(
        options.pop("cron"), options.pop("every"), options.pop("at"), options.pop("after"),
        options.pop("when"), options.pop("pass_results"), options.pop("event"),
        options.pop("timezone"),
    )  # fmt: skip
    if trigger is not None:
        fields["trigger"] = trigger
    params = options.pop("params")
    if params:
        fields["parameters"] = {
            **fields.get("parameters", {}),
            **{name: parse_value(value) for name, value in params},
        }
    targets = _notifications_from_options(
        options.pop("webhooks"), options.pop("emails"), options.pop("notify_on"),
        options.pop("slower_than"),
    )  # fmt: skip
    if targets:
        fields["notifications"] = targets
    tags = options.pop("tags")
    if tags:
        fields["tags"] = list(tags)
    if options.pop("html"):
        fields["output_formats"] = ["ipynb", "html"]
    renamed = {"retry_delay": "retry_delay_seconds", "timeout": "timeout_seconds",
               "keep_days": "retention_days", "keep_runs": "retention_runs"}  # fmt: skip
    for name, value in options.items():
        if value is not None:
            fields[renamed.get(name, name)] = value
    return fields
