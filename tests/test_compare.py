"""Comparing executed notebooks whose cell counts differ: nbdime's diff (real, no double)
paired cell by cell, the extra cell shown as added or removed and the others aligned."""

from __future__ import annotations

from typing import Any

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from jupyter_sched.compare import compare_notebooks, summarize


def code(source: str, text: str) -> Any:
    cell = new_code_cell(source)
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    return cell


def report(*, total: str, extra: bool = False) -> Any:
    """A small report; ``extra`` inserts a cell after the loading one."""
    cells = [
        new_markdown_cell("# Sales"),
        code("data = load()", "loaded 7 rows\n"),
        code("print(total(data))", f"{total}\n"),
        code("print('done')", "done\n"),
    ]
    if extra:
        cells.insert(2, code("data = data[data.region == 'EU']", "kept 4 rows\n"))
    return new_notebook(cells=cells)


def layout(cells: list[Any]) -> list[tuple[str, int | None, int | None]]:
    return [(c.change, c.index_a, c.index_b) for c in cells]


def test_an_added_cell_is_shown_and_the_others_stay_aligned() -> None:
    diff, cells = compare_notebooks(report(total="1200"), report(total="830", extra=True))
    assert diff  # nbdime's own diff is handed back as JSON
    assert layout(cells) == [
        ("unchanged", 0, 0),
        ("unchanged", 1, 1),
        ("added", None, 2),
        ("modified", 2, 3),  # the cell after the added one is paired with its counterpart
        ("unchanged", 3, 4),
    ]
    added = cells[2]
    assert added.source_a is None and added.source_b == "data = data[data.region == 'EU']"
    assert [o.text for o in added.outputs_b] == ["kept 4 rows\n"] and added.outputs_a == []
    changed = cells[3]
    assert changed.source_a == changed.source_b == "print(total(data))"
    assert not changed.source_changed and changed.outputs_changed
    assert [o.text for o in changed.outputs_a] == ["1200\n"]
    assert [o.text for o in changed.outputs_b] == ["830\n"]
    assert summarize(cells) == {"added": 1, "removed": 0, "modified": 1, "unchanged": 3}


def test_a_removed_cell_is_shown_and_the_others_stay_aligned() -> None:
    _, cells = compare_notebooks(report(total="830", extra=True), report(total="830"))
    assert layout(cells) == [
        ("unchanged", 0, 0),
        ("unchanged", 1, 1),
        ("removed", 2, None),
        ("unchanged", 3, 2),
        ("unchanged", 4, 3),
    ]
    assert [o.text for o in cells[2].outputs_a] == ["kept 4 rows\n"]
    # Unchanged cells carry their source only, not their outputs.
    assert cells[3].outputs_a == [] and cells[3].source_b == "print(total(data))"


def test_cells_added_at_the_end() -> None:
    longer = report(total="1200")
    longer.cells.extend([code("print('appendix')", "appendix\n"), new_markdown_cell("Fin")])
    _, cells = compare_notebooks(report(total="1200"), longer)
    assert layout(cells) == [
        *[("unchanged", i, i) for i in range(4)],
        ("added", None, 4),
        ("added", None, 5),
    ]
    assert cells[5].cell_type == "markdown" and cells[5].source_b == "Fin"
