"""Email reports: the executed notebook rendered into the body of a notification email.

The HTML comes from nbconvert (its ``basic`` template: no page CSS, which mail clients
drop anyway), with inputs hidden when the target says so; each image becomes a related
MIME part referenced by ``cid:`` so that mail clients show it without fetching anything.
Above a size bound the message falls back to the summary and links. Headers are set
through the ``email`` package's default policy, which refuses a CR or LF in a header
value, and the subject is one line, so nothing in a job's name can add a header.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

#: Tags of cells whose input is hidden with ``hide_input`` (papermill's injected
#: parameters are an input too) or that are always left out of a report.
HIDDEN_INPUT_TAGS = {"hide-input", "hide_input", "remove_input", "injected-parameters"}
REMOVED_CELL_TAGS = {"remove_cell", "remove-cell"}
#: ``<img src="data:...">`` as nbconvert writes images of outputs.
_DATA_IMAGE = re.compile(r'src="data:image/(png|jpeg|gif);base64,([A-Za-z0-9+/=\s]+)"')


def render_report(notebook: Path, *, hide_input: bool) -> str:
    """The notebook's HTML for an email body (inputs left out with ``hide_input``)."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = REMOVED_CELL_TAGS
    config.TagRemovePreprocessor.remove_input_tags = HIDDEN_INPUT_TAGS if hide_input else set()
    exporter = HTMLExporter(
        config=config, template_name="basic", exclude_input=hide_input,
        exclude_input_prompt=True, exclude_output_prompt=True,
    )  # fmt: skip
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    return str(body)


def inline_images(body: str) -> tuple[str, list[tuple[str, str, bytes]]]:
    """``body`` with its data-URL images replaced by ``cid:`` references, and the images
    as (content id, subtype, bytes)."""
    images: list[tuple[str, str, bytes]] = []

    def to_cid(match: re.Match[str]) -> str:
        try:
            data = base64.b64decode(match.group(2), validate=False)
        except (binascii.Error, ValueError):
            return match.group(0)
        cid = make_msgid(domain="jupyter-sched")
        images.append((cid, match.group(1), data))
        return f'src="cid:{cid[1:-1]}"'

    return _DATA_IMAGE.sub(to_cid, body), images


def failing_cell_source(notebook: Path | None, cell_index: int | None) -> str | None:
    """The source of the cell that failed, when the output notebook has it."""
    if notebook is None or cell_index is None:
        return None
    import nbformat

    try:
        cells = nbformat.read(str(notebook), as_version=4).cells
    except Exception:  # noqa: BLE001 - an unreadable notebook just has no cell to show
        return None
    return str(cells[cell_index].source) if 0 <= cell_index < len(cells) else None


def report_message(
    message: EmailMessage,
    text: str,
    facts: dict[str, Any],
    *,
    report: dict[str, Any],
    output: Path | None,
    html_output: Path | None,
    max_bytes: int,
) -> None:
    """Fill ``message`` (headers already set) with the text ``text`` and, when the run has
    an output notebook, its rendered report with inline images and the attachments asked
    for; above ``max_bytes`` the message keeps the text with a note why."""
    error = facts.get("error")
    failing = failing_cell_source(output, error.get("cell_index") if error else None)
    if failing is not None:
        text += f"\nThe failing cell:\n\n{_indent(failing)}\n"
    message.set_content(text)
    if output is None or not output.exists():
        return
    body, images = inline_images(render_report(output, hide_input=bool(report.get("hide_input"))))
    attachments = [
        (path, kind)
        for kind, path in (("ipynb", output), ("html", html_output))
        if kind in report.get("attach", []) and path is not None and path.exists()
    ]
    size = len(body) + sum(len(data) for _, _, data in images)
    size += sum(path.stat().st_size for path, _ in attachments)
    if size > max_bytes:
        message.set_content(
            text + f"\nThe report ({size / 1e6:.1f} MB) is larger than this server sends by "
            f"email ({max_bytes / 1e6:.1f} MB): open it from the links above.\n"
        )
        return
    # The subject is the notification's headline (one line, set by the notifier).
    title = str(message["Subject"] or "")
    message.add_alternative(_page(title, facts, body, error, failing), subtype="html")
    html_part = message.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)  # the alternative just added
    for cid, subtype, data in images:
        html_part.add_related(data, maintype="image", subtype=subtype, cid=cid)
    for path, kind in attachments:
        maintype, subtype = ("application", "x-ipynb+json") if kind == "ipynb" else ("text", "html")
        data = path.read_bytes()
        if maintype == "text":
            message.add_attachment(data.decode("utf-8"), subtype=subtype, filename=f"report.{kind}")
        else:
            message.add_attachment(data, maintype, subtype, filename=f"report.{kind}")


def _page(title: str, facts: dict[str, Any], body: str, error: Any, failing: str | None) -> str:
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if error:
        parts.append(
            f"<p><strong>{html.escape(error['ename'])}</strong>: {html.escape(error['evalue'])}</p>"
        )
        if failing is not None:
            parts.append(f"<p>The failing cell:</p><pre>{html.escape(failing)}</pre>")
    links = [f'<a href="{html.escape(u)}">{html.escape(n)}</a>' for n, u in facts["links"].items()
             if u]  # fmt: skip
    if links:
        parts.append("<p>" + " · ".join(links) + "</p>")
    return f"<!DOCTYPE html><html><body>{''.join(parts)}<hr>{body}</body></html>"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
