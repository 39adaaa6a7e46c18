"""Thumbnails of a run's last image output: found, scaled, bounded, sanitised."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_notebook, new_output
from PIL import Image

from jupyter_sched.renders import (
    THUMBNAIL_MAX_BYTES,
    sanitize_svg,
    thumbnail_of,
    write_renders,
)


def chart_png(width: float = 8, height: float = 4, points: int = 200) -> bytes:
    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_subplot()
    ax.plot(range(points), [(i * 37) % 101 for i in range(points)], marker="o")
    ax.set_title("Daily sales")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def image_output(media: str, data: str) -> object:
    return new_output("display_data", data={media: data, "text/plain": "<Figure>"})


def notebook_with(*outputs: object) -> object:
    nb = new_notebook()
    for output in outputs:
        cell = new_code_cell("x")
        cell.outputs = [output]
        nb.cells.append(cell)
    return nb


def test_thumbnail_of_a_chart_is_small_and_keeps_its_aspect_ratio() -> None:
    png = chart_png()
    assert len(png) > THUMBNAIL_MAX_BYTES  # the chart itself is too big to keep as is
    nb = notebook_with(image_output("image/png", base64.b64encode(png).decode()))
    thumb = thumbnail_of(nb)
    assert thumb is not None and thumb.name == "thumbnail.png"
    assert len(thumb.data) <= THUMBNAIL_MAX_BYTES
    with Image.open(io.BytesIO(thumb.data)) as image:
        assert image.format == "PNG"
        assert image.width <= 240
        assert abs(image.width / image.height - 2.0) < 0.05  # 8 x 4 inches


def test_the_last_image_is_taken_and_text_outputs_are_skipped() -> None:
    first = chart_png(4, 4, 10)
    last = chart_png(6, 2, 10)
    nb = notebook_with(
        image_output("image/png", base64.b64encode(first).decode()),
        image_output("image/png", base64.b64encode(last).decode()),
        new_output("stream", name="stdout", text="total sales: 3\n"),
    )
    thumb = thumbnail_of(nb)
    assert thumb is not None
    with Image.open(io.BytesIO(thumb.data)) as image:
        assert abs(image.width / image.height - 3.0) < 0.1


def test_a_notebook_without_images_has_no_thumbnail(tmp_path: Path) -> None:
    nb = notebook_with(new_output("stream", name="stdout", text="hello\n"))
    assert thumbnail_of(nb) is None
    import nbformat

    nbformat.write(nb, tmp_path / "output.ipynb")
    lines: list[str] = []
    write_renders(tmp_path / "output.ipynb", html=None, folder=tmp_path, log_line=lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output.ipynb"]
    assert lines == []


def test_an_undecodable_image_gives_no_thumbnail_and_no_error() -> None:
    nb = notebook_with(image_output("image/png", base64.b64encode(b"not a png").decode()))
    assert thumbnail_of(nb) is None


def test_an_svg_is_kept_sanitised() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" onload="alert(1)">'
        "<script>alert(2)</script><rect width='40' height='20' onclick='x()'/>"
        '<a href="javascript:alert(3)"><text>t</text></a>'
        "<foreignObject><div>html</div></foreignObject></svg>"
    )
    nb = notebook_with(image_output("image/svg+xml", svg))
    thumb = thumbnail_of(nb)
    assert thumb is not None and thumb.name in ("thumbnail.svg", "thumbnail.png")
    if thumb.name.endswith(".svg"):
        text = thumb.data.decode()
        for active in ("script", "onload", "onclick", "javascript:", "foreignObject"):
            assert active not in text
        assert "<rect" in text


def test_sanitize_svg_keeps_drawing() -> None:
    text = sanitize_svg('<svg><path d="M0 0L1 1" stroke="red"/><script src="x"/></svg>')
    assert text == '<svg><path d="M0 0L1 1" stroke="red"/></svg>'


def test_write_renders_writes_html_and_thumbnail(tmp_path: Path) -> None:
    import nbformat

    nb = notebook_with(image_output("image/png", base64.b64encode(chart_png()).decode()))
    nbformat.write(nb, tmp_path / "output.ipynb")
    write_renders(
        tmp_path / "output.ipynb", html=tmp_path / "output.html", folder=tmp_path,
        log_line=lambda line: None,
    )  # fmt: skip
    assert (tmp_path / "thumbnail.png").stat().st_size <= THUMBNAIL_MAX_BYTES
    assert "<html" in (tmp_path / "output.html").read_text()
