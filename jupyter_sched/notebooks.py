"""Notebook files: paths confined to the root, reading them, and their parameters cell."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import papermill

from .errors import InvalidInput, NotFound, PathOutsideRoot
from .schemas import NotebookParameter

#: Parameter types the scheduler checks values against; others accept any JSON value.
_CHECKED_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def notebook_root(recorded: str | None, default: Path) -> Path:
    """The root a job's or run's notebook path is relative to: the one recorded with it
    by the server that checked it, else ``default`` (this process's root)."""
    return Path(recorded) if recorded else default


def resolve_notebook(root: Path, path: str, *, field: str = "notebook") -> Path:
    """The real path of notebook ``path`` (relative to ``root``), which must stay inside it.

    Symlinks are resolved before the check, and the comparison is against ``root`` plus a
    separator so that a sibling such as ``../root2/x.ipynb`` does not pass as inside.
    """
    if "\0" in path:
        raise PathOutsideRoot(f"{field}: the path contains a NUL byte", field=field)
    if os.path.isabs(path) or path.startswith("~"):
        raise PathOutsideRoot(
            f"{field}: must be relative to the server root, got {path!r}", field=field
        )
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, path))
    if not real.startswith(real_root + os.sep):
        raise PathOutsideRoot(f"{field}: {path!r} is outside the server root", field=field)
    if not path.endswith(".ipynb"):
        raise InvalidInput(f"{field}: {path!r} is not a .ipynb notebook", field=field)
    if not os.path.isfile(real):
        raise NotFound(f"{field}: no notebook at {path!r}", field=field)
    return Path(real)


def read_notebook(path: Path, *, field: str = "notebook") -> nbformat.NotebookNode:
    """Read and validate a notebook file, raising :class:`InvalidInput` if it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        nbformat.validate(nb)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{field}: cannot read {path.name}: {exc}", field=field) from exc
    except nbformat.ValidationError as exc:
        raise InvalidInput(
            f"{field}: {path.name} is not a valid notebook: {exc.message}", field=field
        ) from exc
    except Exception as exc:
        raise InvalidInput(
            f"{field}: {path.name} is not a valid notebook: {exc}", field=field
        ) from exc
    return nb  # type: ignore[no-any-return]


def notebook_parameters(path: Path) -> list[NotebookParameter]:
    """The parameters declared in the notebook's ``parameters`` cell, in order.

    The type is the annotation when there is one, else the type of the default literal;
    ``any`` when neither tells (an expression such as ``date.today()``).
    """
    read_notebook(path)
    declared = papermill.inspect_notebook(str(path))
    result = []
    for name, info in declared.items():
        source = info.get("default") or ""
        default: Any = source
        inferred = "any"
        try:
            default = ast.literal_eval(source)
            inferred = _type_name(default)
            json.dumps(default)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = source
        annotated = info.get("inferred_type_name") or "None"
        type_name = annotated if annotated not in ("None", "") else inferred
        result.append(
            NotebookParameter(
                name=name, type=type_name.lower(), default=default, help=info.get("help") or ""
            )
        )
    return result


def _type_name(value: Any) -> str:
    if value is None:
        return "any"
    if isinstance(value, tuple):
        return "list"
    return type(value).__name__


def check_parameters(
    values: dict[str, Any], declared: list[NotebookParameter], *, field: str = "parameters"
) -> None:
    """Refuse values for undeclared parameters and values of the wrong type.

    A notebook without a parameters cell accepts any parameters (papermill injects them
    at the top).
    """
    if not declared:
        return
    by_name = {p.name: p for p in declared}
    for name, value in values.items():
        param = by_name.get(name)
        if param is None:
            known = ", ".join(sorted(by_name))
            raise InvalidInput(
                f"{field}.{name}: the notebook declares no parameter {name!r} "
                f"(it declares: {known})",
                field=f"{field}.{name}",
            )
        allowed = _CHECKED_TYPES.get(param.type)
        if allowed is None:
            continue
        wrong_bool = isinstance(value, bool) and param.type != "bool"
        if wrong_bool or not isinstance(value, allowed):
            raise InvalidInput(
                f"{field}.{name}: expected {param.type} like the notebook's default "
                f"{param.default!r}, got {type(value).__name__} {value!r}",
                field=f"{field}.{name}",
            )
