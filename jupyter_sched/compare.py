"""Comparing two runs: the parameters that differ, and the diff of their executed
notebooks computed by nbdime, with each changed cell's outputs side by side.

nbdime's diff of the cell list says which cells were added, removed or patched; this
module walks it to pair the cells of the two notebooks, so a reader (the panel, the CLI)
sees cell by cell what changed, including notebooks whose cell counts differ.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .schemas import Run

#: Output media shown as an image, in order of preference.
IMAGE_MEDIA = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")


class OutputView(BaseModel):
    """One output of a cell, in a form any client can show: an image (base64, or the SVG
    text) or text (a table's plain-text rendering, a stream, an error)."""

    kind: Literal["text", "image", "error"]
    text: str | None = None
    media_type: str | None = None
    data: str | None = None


class CellChange(BaseModel):
    """A cell of either notebook, paired with its counterpart in the other when it has one.

    ``index_a`` / ``index_b``: where the cell is in each executed notebook (``None`` where
    it does not exist: added in b, or removed from a).
    """

    change: Literal["added", "removed", "modified", "unchanged"]
    index_a: int | None
    index_b: int | None
    cell_type: str
    source_a: str | None
    source_b: str | None
    source_changed: bool
    outputs_changed: bool
    outputs_a: list[OutputView] = Field(default_factory=list)
    outputs_b: list[OutputView] = Field(default_factory=list)


class ValueChange(BaseModel):
    """A parameter (or recorded value) whose value differs; ``None`` where it is absent."""

    name: str
    a: Any = None
    b: Any = None
    in_a: bool = True
    in_b: bool = True


class RunComparison(BaseModel):
    """``GET runs/{a}/compare/{b}``: what changed from run ``a`` to run ``b``."""

    a: Run
    b: Run
    parameters: list[ValueChange]
    #: The recorded values (``jupyter_sched.record``) that differ.
    values: list[ValueChange] = Field(default_factory=list)
    cells: list[CellChange]
    #: Counts of ``cells`` by change.
    summary: dict[str, int]
    #: nbdime's diff of notebook ``a`` to notebook ``b`` (its JSON diff format).
    notebook_diff: list[dict[str, Any]]


def changed_values(a: dict[str, Any], b: dict[str, Any]) -> list[ValueChange]:
    """The names whose values differ between ``a`` and ``b``, sorted."""
    changes = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name) or (name in a) != (name in b):
            changes.append(
                ValueChange(name=name, a=a.get(name), b=b.get(name), in_a=name in a, in_b=name in b)
            )
    return changes


def output_view(output: dict[str, Any]) -> OutputView:
    """What a reader needs of one notebook output."""
    kind = output.get("output_type")
    if kind == "stream":
        return OutputView(kind="text", text=_text(output.get("text", "")))
    if kind == "error":
        text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
        return OutputView(kind="error", text=text)
    data = output.get("data") or {}
    for media in IMAGE_MEDIA:
        if media in data:
            return OutputView(kind="image", media_type=media, data=_text(data[media]).strip())
    return OutputView(kind="text", text=_text(data.get("text/plain", "")))


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _outputs_key(cell: dict[str, Any]) -> list[Any]:
    """A cell's outputs without what changes between any two executions (counters)."""
    return [
        {k: v for k, v in out.items() if k not in ("execution_count", "metadata")}
        for out in cell.get("outputs", []) or []
    ]


def _pair(a: dict[str, Any] | None, b: dict[str, Any] | None, ia: int | None, ib: int | None,
          full: bool) -> CellChange:  # fmt: skip
    source_a = _text(a["source"]) if a is not None else None
    source_b = _text(b["source"]) if b is not None else None
    source_changed = a is not None and b is not None and source_a != source_b
    outputs_changed = a is not None and b is not None and _outputs_key(a) != _outputs_key(b)
    if a is None:
        change = "added"
    elif b is None:
        change = "removed"
    else:
        change = "modified" if source_changed or outputs_changed else "unchanged"
    show = full or change != "unchanged"
    return CellChange(
        change=change, index_a=ia, index_b=ib,
        cell_type=(a or b or {}).get("cell_type", "code"),
        source_a=source_a, source_b=source_b,
        source_changed=source_changed, outputs_changed=outputs_changed,
        outputs_a=[output_view(o) for o in (a or {}).get("outputs", []) or []] if show else [],
        outputs_b=[output_view(o) for o in (b or {}).get("outputs", []) or []] if show else [],
    )  # fmt: skip


def pair_cells(nb_a: dict[str, Any], nb_b: dict[str, Any], diff: list[Any]) -> list[CellChange]:
    """The cells of both notebooks in order, paired along nbdime's diff of their cell list.

    Outputs are included for cells that changed (unchanged cells keep their source only).
    """
    cells_a, cells_b = nb_a.get("cells", []), nb_b.get("cells", [])
    cell_ops: list[dict[str, Any]] = next(
        (op["diff"] for op in diff if op.get("key") == "cells"), []
    )
    by_key: dict[int, list[dict[str, Any]]] = {}
    for op in cell_ops:
        by_key.setdefault(op["key"], []).append(op)
    pairs: list[CellChange] = []
    ia = ib = 0
    while ia < len(cells_a) or ib < len(cells_b):
        ops = by_key.pop(ia, [])
        # nbdime orders the operations at one index: additions come before it.
        for op in [o for o in ops if o["op"] == "addrange"]:
            for _ in op["valuelist"]:
                pairs.append(_pair(None, cells_b[ib], None, ib, True))
                ib += 1
        removed = next((o["length"] for o in ops if o["op"] == "removerange"), 0)
        if removed:
            for _ in range(removed):
                pairs.append(_pair(cells_a[ia], None, ia, None, True))
                ia += 1
            continue
        if ia >= len(cells_a):
            while ib < len(cells_b):  # additions at the end
                pairs.append(_pair(None, cells_b[ib], None, ib, True))
                ib += 1
            break
        if ib >= len(cells_b):  # defensive: a diff that does not cover the whole list
            pairs.append(_pair(cells_a[ia], None, ia, None, True))
            ia += 1
            continue
        pairs.append(_pair(cells_a[ia], cells_b[ib], ia, ib, False))
        ia += 1
        ib += 1
    return pairs


def compare_notebooks(
    nb_a: dict[str, Any], nb_b: dict[str, Any]
) -> tuple[list[Any], list[CellChange]]:
    """nbdime's diff of two notebooks (JSON), and their cells paired along it."""
    import nbdime  # type: ignore[import-untyped]

    diff = nbdime.diff_notebooks(nb_a, nb_b)
    as_json = _plain(diff)
    return as_json, pair_cells(nb_a, nb_b, as_json)


def _plain(value: Any) -> Any:
    """nbdime's diff entries (dict subclasses) as plain JSON values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def summarize(cells: list[CellChange]) -> dict[str, int]:
    counts = {"added": 0, "removed": 0, "modified": 0, "unchanged": 0}
    for cell in cells:
        counts[cell.change] += 1
    return counts
