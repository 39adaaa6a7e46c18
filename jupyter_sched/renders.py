"""What a run's executed notebook is turned into when it ends: its HTML rendering and a
small thumbnail of its last image output.

:func:`write_renders` is called where the output notebook has been written (the
executor, after the kernel is gone); each rendering is best effort: one that fails is
noted in the run's log and never changes the run's outcome.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import THUMBNAIL_PNG, THUMBNAIL_SVG

#: Largest thumbnail kept, in bytes.
THUMBNAIL_MAX_BYTES = 20_000
#: Width of a thumbnail in pixels (smaller images keep their own width).
THUMBNAIL_WIDTH = 240
#: Tallest thumbnail in pixels (a very tall image is scaled down further to fit).
THUMBNAIL_MAX_HEIGHT = 480

#: Raster image types of notebook outputs, by preference when one output has several.
_RASTER = ("image/png", "image/jpeg", "image/webp", "image/gif")
_SVG = "image/svg+xml"


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail's bytes and its file name (which says its type)."""

    data: bytes
    name: str

    @property
    def media_type(self) -> str:
        return "image/svg+xml" if self.name.endswith(".svg") else "image/png"


def last_image(nb: Any) -> tuple[str, str | bytes] | None:
    """The media type and data of the notebook's last image output, or ``None``."""
    for cell in reversed(nb.get("cells", [])):
        for output in reversed(cell.get("outputs", []) or []):
            data = output.get("data") or {}
            for media in (*_RASTER, _SVG):
                if media in data:
                    value = data[media]
                    text = "".join(value) if isinstance(value, list) else value
                    return media, text
    return None


def thumbnail_of(nb: Any) -> Thumbnail | None:
    """A thumbnail of the notebook's last image output, at most :data:`THUMBNAIL_MAX_BYTES`;
    ``None`` when the notebook has no image (or none that can be made that small)."""
    found = last_image(nb)
    if found is None:
        return None
    media, data = found
    if media == _SVG:
        return svg_thumbnail(data if isinstance(data, str) else data.decode("utf-8", "replace"))
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    return raster_thumbnail(raw)


def raster_thumbnail(raw: bytes) -> Thumbnail | None:
    """A PNG of the image ``raw`` (any format Pillow reads), 240 px wide at most, with its
    aspect ratio, made smaller (fewer colours, then fewer pixels) until it fits the bound."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as opened:
            opened.load()
            image = opened.convert("RGBA") if opened.mode in ("P", "LA", "PA") else opened.copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA")
    width = THUMBNAIL_WIDTH
    while width >= 32:
        scaled = image.copy()
        scaled.thumbnail((width, THUMBNAIL_MAX_HEIGHT * width // THUMBNAIL_WIDTH))
        for colours in (None, 256, 64, 16):
            candidate = scaled if colours is None else scaled.quantize(colours)
            out = io.BytesIO()
            candidate.save(out, format="PNG", optimize=True)
            if out.tell() <= THUMBNAIL_MAX_BYTES:
                return Thumbnail(out.getvalue(), THUMBNAIL_PNG)
        width = width * 3 // 4
    return None


#: Parts of an SVG that could run script or fetch something: the API serves a thumbnail
#: with ``Content-Security-Policy: sandbox`` anyway; this keeps the file itself inert.
_SVG_ACTIVE = re.compile(
    r"<script\b.*?</script\s*>|<script\b[^>]*/>|<foreignObject\b.*?</foreignObject\s*>",
    re.IGNORECASE | re.DOTALL,
)
_SVG_HANDLER = re.compile(r"\s on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*')", re.IGNORECASE | re.VERBOSE)
_SVG_JS_LINK = re.compile(r"(href\s*=\s*[\"'])\s*javascript:[^\"']*", re.IGNORECASE)


def sanitize_svg(text: str) -> str:
    """``text`` without scripts, event handlers, foreign HTML or ``javascript:`` links."""
    text = _SVG_ACTIVE.sub("", text)
    text = _SVG_HANDLER.sub("", text)
    return _SVG_JS_LINK.sub(r"\1#", text)


def svg_thumbnail(text: str) -> Thumbnail | None:
    """A PNG of the SVG when cairosvg is installed, else the sanitised SVG itself (an SVG
    scales to any width); ``None`` when it is larger than the bound."""
    try:
        import cairosvg  # type: ignore[import-not-found, unused-ignore]
    except (ImportError, OSError):  # not installed, or its cairo library is missing
        data = sanitize_svg(text).encode("utf-8")
        return Thumbnail(data, THUMBNAIL_SVG) if len(data) <= THUMBNAIL_MAX_BYTES else None
    png = cairosvg.svg2png(bytestring=text.encode("utf-8"), output_width=THUMBNAIL_WIDTH * 2)
    return raster_thumbnail(png)


def write_thumbnail(nb: Any, folder: Path) -> Path | None:
    """Write the notebook's thumbnail into ``folder``; the file written, or ``None``."""
    thumb = thumbnail_of(nb)
    if thumb is None:
        return None
    path = folder / thumb.name
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(thumb.data)
    tmp.replace(path)
    return path


def write_html(nb: Any, target: Path) -> None:
    """The notebook as a standalone HTML page (nbconvert's lab template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(log=_HTML_LOG).from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")


def write_renders(
    output: Path, *, html: Path | None, folder: Path, log_line: Callable[[str], None]
) -> None:
    """Everything made from the output notebook at ``output``: the HTML at ``html`` (when
    asked for) and the thumbnail in ``folder``. Failures go to ``log_line`` only."""
    if not output.exists():
        return
    import nbformat

    try:
        nb = nbformat.read(str(output), as_version=4)
    except Exception as exc:  # noqa: BLE001 - an unreadable output has no renderings
        log_line(f"cannot read the output notebook: {type(exc).__name__}: {exc}")
        return
    if html is not None:
        try:
            write_html(nb, html)
        except Exception as exc:  # noqa: BLE001 - a failed HTML export must not fail the run
            log_line(f"HTML export failed: {type(exc).__name__}: {exc}")
    try:
        write_thumbnail(nb, folder)
    except Exception as exc:  # noqa: BLE001 - a thumbnail is a nicety
        log_line(f"thumbnail failed: {type(exc).__name__}: {exc}")


class _WithoutAltTextNotice(logging.Filter):
    """Drops nbconvert's notice about images without alternative text: plots in notebook
    outputs never have any, so it would be printed for nearly every HTML output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Alternative text is missing")


#: The logger of HTML exports: nbconvert's other warnings still reach the worker's log.
_HTML_LOG = logging.getLogger("jupyter_sched.executor.html")
_HTML_LOG.addFilter(_WithoutAltTextNotice())
