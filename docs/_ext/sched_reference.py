"""Reference pages generated from their sources, so that they cannot drift from the code.

``sched-rest-api``
    The REST API from the OpenAPI document the server serves (``labextension/openapi.json``
    is its generated copy, checked against the server by ``jlpm api:check``).
``sched-settings``
    The configuration from where it is declared: the fields of
    :class:`jupyter_sched.config.Settings` (with their help texts and environment
    variables) and the configurable traitlets of :class:`jupyter_sched.app.SchedApp`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "labextension" / "openapi.json"
METHODS = ("get", "post", "patch", "put", "delete")


def literal(text: str) -> str:
    """Inline literal text for reST, whatever it contains."""
    text = " ".join(str(text).split())
    return f"``{text}``" if text else "—"


def prose(text: str | None) -> str:
    """Help text written with Markdown-style `code` as reST, on one line."""
    if not text:
        return ""
    text = " ".join(text.split())
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def list_table(headers: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [headers, *rows]:
        lines.append(f"   * - {row[0] or '—'}")
        lines += [f"     - {cell or '—'}" for cell in row[1:]]
    return [*lines, ""]


class GeneratedDirective(SphinxDirective):
    """A directive whose content is reST it generates."""

    def generate(self) -> Iterator[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        content = StringList()
        source = self.get_source_info()[0]
        for number, line in enumerate(self.generate()):
            content.append(line, source, number)
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container)
        return container.children


# -- the REST API ------------------------------------------------------------------------


def schema_type(schema: dict[str, Any]) -> str:
    """A JSON schema in a few words: ``string``, ``Run``, ``list of Tag``, ``Job or null``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f":ref:`{name} <schema-{name.lower()}>`"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(schema_type(option) for option in schema[key])
    if "enum" in schema:
        return " | ".join(literal(json.dumps(value)) for value in schema["enum"])
    if "const" in schema:
        return literal(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {schema_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return "object" if extra is True else f"object of {schema_type(extra)}"
    if isinstance(kind, list):
        return " or ".join(kind)
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def constraints(schema: dict[str, Any]) -> str:
    words = {
        "minimum": "≥ {}", "maximum": "≤ {}", "exclusiveMinimum": "> {}",
        "minLength": "at least {} characters", "maxLength": "at most {} characters",
        "minItems": "at least {} items", "maxItems": "at most {} items",
    }  # fmt: skip
    found = [template.format(schema[key]) for key, template in words.items() if key in schema]
    for option in schema.get("anyOf", []):
        found += [t.format(option[k]) for k, t in words.items() if k in option]
    return ", ".join(found)


def default(schema: dict[str, Any]) -> str:
    return f"default {literal(json.dumps(schema['default']))}" if "default" in schema else ""


def notes(schema: dict[str, Any], described: dict[str, Any]) -> str:
    """Description, constraints and default of a field or parameter."""
    parts = [prose(described.get("description")), constraints(schema), default(schema)]
    return ", ".join(part for part in parts if part)


class RestApiDirective(GeneratedDirective):
    """Every operation of the API, then every schema it uses."""

    def generate(self) -> Iterator[str]:
        self.env.note_dependency(str(OPENAPI))
        spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
        base = spec.get("servers", [{}])[0].get("url", "")
        yield "Operations"
        yield "=========="
        yield ""
        for path, item in spec["paths"].items():
            for method in METHODS:
                if method in item:
                    yield from self.operation(f"{base.rstrip('/')}{path}", method, item[method])
        yield "Schemas"
        yield "======="
        yield ""
        for name, schema in spec["components"]["schemas"].items():
            yield from self.schema(name, schema)

    def operation(self, path: str, method: str, op: dict[str, Any]) -> Iterator[str]:
        title = f"{method.upper()} {path}"
        yield f".. _op-{op['operationId'].lower()}:"
        yield ""
        yield title
        yield "-" * len(title)
        yield ""
        yield prose(op.get("description") or op.get("summary"))
        yield ""
        params = op.get("parameters", [])
        if params:
            rows = [
                [literal(p["name"]), p["in"], schema_type(p.get("schema", {})),
                 "yes" if p.get("required") else "no", notes(p.get("schema", {}), p)]
                for p in params
            ]  # fmt: skip
            yield from list_table(
                ["parameter", "in", "type", "required", "notes"], rows, "15 8 25 8 44"
            )
        body = op.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            needed = "required" if body.get("required") else "optional"
            yield f"Request body ({needed}): {schema_type(schema)}"
            yield ""
        rows = []
        for status, response in op.get("responses", {}).items():
            content = response.get("content", {})
            kinds = [
                schema_type(media["schema"]) if "schema" in media else literal(media_type)
                for media_type, media in content.items()
            ]
            rows.append([status, prose(response.get("description")), ", ".join(kinds)])
        yield from list_table(["status", "meaning", "body"], rows, "10 50 40")

    def schema(self, name: str, schema: dict[str, Any]) -> Iterator[str]:
        yield f".. _schema-{name.lower()}:"
        yield ""
        yield name
        yield "-" * len(name)
        yield ""
        yield prose(schema.get("description"))
        yield ""
        properties = schema.get("properties", {})
        if not properties:
            yield f"Type: {schema_type(schema)}"
            yield ""
            return
        required = set(schema.get("required", []))
        rows = [
            [literal(field), schema_type(spec), "yes" if field in required else "no",
             notes(spec, spec)]
            for field, spec in properties.items()
        ]  # fmt: skip
        yield from list_table(["field", "type", "required", "notes"], rows, "20 35 10 35")


# -- configuration -----------------------------------------------------------------------


def dataclass_default(spec: dataclasses.Field[Any]) -> str:
    if spec.default is not dataclasses.MISSING:
        return literal(repr(spec.default))
    return prose(spec.metadata["default_text"])


def trait_type(trait: Any) -> str:
    name = type(trait).__name__
    return {"Unicode": "text", "Bool": "true/false", "Float": "number", "Int": "integer",
            "List": "list"}.get(name, name)  # fmt: skip


def trait_default(app: type, name: str, trait: Any) -> str:
    if f"_default_{name}" in vars(app) or any(
        getattr(member, "trait_name", None) == name for member in vars(app).values()
    ):
        return "computed (see the meaning)"
    value = trait.default_value
    return literal(repr(value)) if value not in (None, "") else "unset"


class SettingsDirective(GeneratedDirective):
    """The settings of the deployment, then the settings of the server extension only."""

    def generate(self) -> Iterator[str]:
        from jupyter_sched import config
        from jupyter_sched.app import SchedApp

        self.env.note_dependency(config.__file__)
        traits = SchedApp.class_traits(config=True)
        yield "Shared by the server, the workers and the command line"
        yield "======================================================="
        yield ""
        yield (
            "Each of these has an environment variable, read by ``jupyter sched`` and its "
            "workers; the server reads it too where no Jupyter configuration sets the traitlet."
        )
        yield ""
        rows = []
        for spec in dataclasses.fields(config.Settings):
            doc = spec.metadata["help"]
            traitlet = literal(f"c.SchedApp.{spec.name}") if spec.name in traits else "—"
            rows.append(
                [literal(config.ENV_PREFIX + spec.name.upper()), traitlet,
                 dataclass_default(spec), prose(doc)]
            )  # fmt: skip
        yield from list_table(["environment variable", "traitlet", "default", "meaning"], rows,
                              "28 24 18 30")  # fmt: skip
        yield "Server extension only"
        yield "====================="
        yield ""
        yield (
            "Traitlets of ``SchedApp``, set as ``c.SchedApp.<name>`` in a Jupyter configuration "
            "file or ``--SchedApp.<name>=...`` on the command line."
        )
        yield ""
        shared = {spec.name for spec in dataclasses.fields(config.Settings)}
        rows = [
            [literal(f"c.SchedApp.{name}"), trait_type(trait), trait_default(SchedApp, name, trait),
             prose(trait.help)]
            for name, trait in sorted(traits.items())
            if name not in shared and trait.this_class is SchedApp
        ]  # fmt: skip
        yield from list_table(["traitlet", "type", "default", "meaning"], rows, "28 10 14 48")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("sched-rest-api", RestApiDirective)
    app.add_directive("sched-settings", SettingsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
