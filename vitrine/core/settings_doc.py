"""The README's configuration table, generated from ``Settings`` so that it cannot drift.

    python -m vitrine.core.settings_doc README.md           # rewrite the table between the markers
    python -m vitrine.core.settings_doc --check README.md   # exit 1 (with a diff) when it is out of date

Every field of ``Settings`` is a row: its variable (``VITRINE_<NAME>``), its type and constraints, its default and
what it means. All of it comes from the model itself, the meaning from ``Field(description=...)``, so the wording
has one home, next to the setting it explains. A field without a description is an error, not an empty cell.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from vitrine.core.config import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
COMMAND = "python -m vitrine.core.settings_doc README.md"

SCALARS: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
# Defaults that a factory computes per process, written as an operator reads them.
DEFAULT_OVERRIDES: dict[str, str] = {"node_id": "`node-<random>`"}


class SettingsDocError(ValueError):
    """The table cannot be generated: a field is undescribed, or the README has no markers."""


def env_var(name: str) -> str:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return (prefix + name).upper()


def _constraints(info: FieldInfo) -> str:
    words = []
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            words.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            words.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            words.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            words.append(f"< {item.lt}")
    return ", ".join(words)


def type_name(field: str, info: FieldInfo) -> str:
    """How an operator writes the value: its kind, its choices, its bounds."""
    annotation = info.annotation
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):  # a number or a word: `VITRINE_MEDIA_WORKERS`
        name = " \\| ".join(type_name(field, FieldInfo(annotation=arg)) for arg in args)
    elif origin is typing.Literal:
        name = " \\| ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    elif origin is list:
        (item,) = typing.get_args(annotation)
        is_model = isinstance(item, type) and issubclass(item, BaseModel)
        name = "JSON list" if is_model else "list, comma-separated"
    elif annotation is SecretStr:
        name = "secret"
    elif annotation in SCALARS:
        name = SCALARS[annotation]
    else:
        raise SettingsDocError(f"{env_var(field)}: no type name for {annotation!r}; teach settings_doc.type_name")
    bounds = _constraints(info)
    return f"{name}, {bounds}" if bounds else name


def default_text(name: str, info: FieldInfo) -> str:
    if name in DEFAULT_OVERRIDES:
        return DEFAULT_OVERRIDES[name]
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if value != []:
            raise SettingsDocError(f"{env_var(name)}: its default is computed; add it to DEFAULT_OVERRIDES")
        return "`[]`" if type_name(name, info) == "JSON list" else "*(empty)*"
    value = info.default
    if value is PydanticUndefined:
        return "*(required)*"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return "*(unset)*"
    if value == "":
        return "*(empty)*"
    return f"`{value}`"


def describe(name: str, info: FieldInfo) -> str:
    if not info.description:
        raise SettingsDocError(
            f"{env_var(name)} has no description: give it Field(description=...) in vitrine/core/config.py"
        )
    # One line per row, and a literal ``|`` must not split the Markdown cell.
    return " ".join(info.description.split()).replace("|", "\\|")


def settings_table() -> str:
    """The Markdown table of every setting, in the order ``Settings`` declares them."""
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        cells = [f"`{env_var(name)}`", type_name(name, info), default_text(name, info), describe(name, info)]
        rows.append(f"| {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def render(readme: str) -> str:
    """The README with the generated table between its markers."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise SettingsDocError(f"the README needs exactly one {START} followed by one {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    note = f"<!-- generated by `{COMMAND}` from vitrine/core/config.py: edit that, not this table -->\n"
    return f"{head}{START}\n{note}{settings_table()}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vitrine.core.settings_doc", description="Write the README's configuration table from Settings."
    )
    parser.add_argument("readme", type=Path, help="the Markdown file holding the markers (README.md)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the table is stale")
    args = parser.parse_args(argv)
    current = args.readme.read_text(encoding="utf-8")
    try:
        wanted = render(current)
    except SettingsDocError as exc:
        print(f"settings_doc: {exc}", file=sys.stderr)
        return 2
    if wanted == current:
        return 0
    if args.check:
        diff = difflib.unified_diff(
            current.splitlines(keepends=True), wanted.splitlines(keepends=True), str(args.readme), "generated"
        )
        sys.stdout.writelines(diff)
        print(f"\n{args.readme}'s configuration table is out of date: run `{COMMAND}`", file=sys.stderr)
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
