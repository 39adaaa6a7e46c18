"""Notebook files: paths confined to the root, reading them, and their parameters cell.

A notebook path given by a user is only ever opened here, after :func:`resolve_notebook`
checked it, and never handed to a function that formats it (papermill applies
``str.format`` to the paths it is given): the parameters cell is read from the notebook
node with papermill's translators.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, NotFound, PathOutsideRoot
from .schemas import NotebookParameter

if TYPE_CHECKING:
    # Imported where used: nbformat, papermill and jupyter_client take seconds and tens of
    # megabytes to import, which the server and the CLI's listings do not need.
    from nbformat import NotebookNode
    from papermill.translators import Translator

#: Kernel of a notebook that names none in its metadata (what Jupyter itself would start).
DEFAULT_KERNEL = "python3"

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


def resolve_notebook(
    root: Path, path: str, *, field: str = "notebook", allow_hidden: bool = True
) -> Path:
    """The real path of notebook ``path`` (relative to ``root``), which must stay inside it.

    Symlinks are resolved before the check, and the comparison is against ``root`` plus a
    separator so that a sibling such as ``../root2/x.ipynb`` does not pass as inside.
    Without ``allow_hidden`` (the server's ``ContentsManager.allow_hidden``), a path with
    a component starting with ``.``, as given or once resolved, does not exist.
    """
    check_notebook_path(path, field=field, allow_hidden=allow_hidden)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, path))
    if not real.startswith(real_root + os.sep):
        raise PathOutsideRoot(f"{field}: {path!r} is outside the server root", field=field)
    if not allow_hidden and _is_hidden(os.path.relpath(real, real_root)):
        raise _hidden(path, field)
    if not os.path.isfile(real):
        raise NotFound(f"{field}: no notebook at {path!r}", field=field)
    return Path(real)


def check_notebook_path(path: str, *, field: str = "notebook", allow_hidden: bool = True) -> None:
    """What can be checked of a notebook path without the file system: relative, inside
    the root as written, a ``.ipynb`` name, not hidden unless allowed.

    Enough where the path's owner handed the notebook over (a hub's service does not read
    users' folders); whoever opens the file resolves it with :func:`resolve_notebook`.
    """
    if "\0" in path:
        raise PathOutsideRoot(f"{field}: the path contains a NUL byte", field=field)
    if os.path.isabs(path) or path.startswith("~"):
        raise PathOutsideRoot(
            f"{field}: must be relative to the server root, got {path!r}", field=field
        )
    written = os.path.normpath(path)
    if written == os.pardir or written.startswith(os.pardir + os.sep):
        raise PathOutsideRoot(f"{field}: {path!r} is outside the server root", field=field)
    if not allow_hidden and _is_hidden(path):
        raise _hidden(path, field)
    if not path.endswith(".ipynb"):
        raise InvalidInput(f"{field}: {path!r} is not a .ipynb notebook", field=field)


def _hidden(path: str, field: str) -> NotFound:
    return NotFound(
        f"{field}: {path!r} is hidden, and this server does not serve hidden files "
        "(ContentsManager.allow_hidden)",
        field=field,
    )


def _is_hidden(relative: str) -> bool:
    """Whether a path relative to the root has a component starting with a dot."""
    parts = Path(os.path.normpath(relative)).parts
    return any(part.startswith(".") and part not in (".", "..") for part in parts)


def read_notebook(path: Path, *, field: str = "notebook", shown: str | None = None) -> NotebookNode:
    """Read and validate a notebook file, raising :class:`InvalidInput` if it is not one.

    The message names the file as ``shown`` (the path the caller gave; the real path may
    be a symlink's target) and says what is wrong, never what the file holds.
    """
    import nbformat

    name = repr(shown) if shown is not None else repr(path.name)
    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        nbformat.validate(nb)
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {name}: {exc.strerror}", field=field) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{field}: {name} is not UTF-8 text", field=field) from None
    except nbformat.ValidationError:
        raise InvalidInput(
            f"{field}: {name} is not a valid notebook (it does not follow the nbformat schema)",
            field=field,
        ) from None
    except Exception:  # noqa: BLE001 - nbformat raises many kinds (NotJSONError, KeyError...)
        raise InvalidInput(
            f"{field}: {name} is not a notebook (not nbformat JSON)", field=field
        ) from None
    return nb  # type: ignore[no-any-return]


def kernel_language(name: str) -> str | None:
    """The language of kernelspec ``name``; ``None`` if no such kernel is installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return str(KernelSpecManager().get_kernel_spec(name).language).lower()
    except NoSuchKernel:
        return None


def notebook_kernel(nb: NotebookNode, kernel: str | None = None) -> str:
    """The kernel a run of ``nb`` uses: ``kernel`` when given, else the one its metadata
    names, else :data:`DEFAULT_KERNEL`."""
    spec = nb.metadata.get("kernelspec") or {}
    return kernel or str(spec.get("name") or DEFAULT_KERNEL)


def _translator(nb: NotebookNode, kernel: str | None, field: str, why: str) -> Translator:
    """papermill's translator of the notebook's language (how parameters are written)."""
    from papermill.exceptions import PapermillException
    from papermill.translators import papermill_translators

    name = notebook_kernel(nb, kernel)
    language = kernel_language(name) or str(
        (nb.metadata.get("language_info") or {}).get("name")
        or (nb.metadata.get("kernelspec") or {}).get("language")
        or "unknown"
    )
    try:
        return papermill_translators.find_translator(name, language)
    except PapermillException:
        raise InvalidInput(
            f"{field}: papermill cannot {why} in a notebook of kernel {name!r} "
            f"(language {language!r})",
            field=field,
        ) from None


def notebook_parameters(
    path: Path, *, kernel: str | None = None, field: str = "notebook", shown: str | None = None
) -> list[NotebookParameter]:
    """The parameters declared in the notebook's ``parameters`` cell, in order."""
    return declared_parameters(read_notebook(path, field=field, shown=shown), kernel, field)


def declared_parameters(
    nb: NotebookNode, kernel: str | None = None, field: str = "notebook"
) -> list[NotebookParameter]:
    """The parameters declared in the ``parameters`` cell of ``nb``, in order.

    The type is the annotation when there is one, else the type of the default literal;
    ``any`` when neither tells (an expression such as ``date.today()``).
    """
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", ())), None)
    if cell is None:
        return []
    translator = _translator(nb, kernel, field, "read the parameters cell")
    try:
        declared = translator.inspect(cell)
    except NotImplementedError:
        raise InvalidInput(
            f"{field}: papermill cannot read the parameters cell of this notebook's language",
            field=field,
        ) from None
    result = []
    # a name assigned twice is one parameter, with the last default (what the cell leaves)
    for info in {p.name: p._asdict() for p in declared}.values():
        source = info.get("default") or ""
        default: Any = source
        inferred = "any"
        try:
            default = ast.literal_eval(source)
            inferred = _type_name(default)
            json.dumps(default, allow_nan=False)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = source
        annotated = info.get("inferred_type_name") or "None"
        type_name = annotated if annotated not in ("None", "") else inferred
        result.append(
            NotebookParameter(
                name=info["name"],
                type=type_name.lower(),
                default=default,
                help=info.get("help") or "",
            )
        )
    return result


def check_notebook(
    path: Path,
    values: dict[str, Any],
    *,
    kernel: str | None = None,
    field: str = "notebook",
    shown: str | None = None,
) -> None:
    """Check that the file at ``path`` is a notebook that takes parameters ``values``."""
    nb = read_notebook(path, field=field, shown=shown)
    declared = declared_parameters(nb, kernel, field)
    if values and not declared:
        _translator(nb, kernel, "parameters", "inject parameters")
    check_parameters(values, declared)


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
