"""Every key of the config schema (``common.config``), with its type and default, as docs/config.md lists them.

Why from the dataclasses: the loader accepts exactly their fields, so they are the
complete list; a reference written by hand drifts. ``tests/docs/test_config_reference.py``
checks docs/config.md against this list, and

    python -m testing.config_keys

prints the table rows (key, type, default) to paste when a field is added.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import json
import typing
from typing import Any, Dict, Iterator, List, NamedTuple

import yaml

from common.config import PipelineConfig

REQUIRED = "required"


class ConfigKey(NamedTuple):
    """One documented key: ``trainer.train_steps``, ``features[].top_k``, ``data.columns[].name``."""
    key: str
    type_text: str
    default_text: str
    section: str  # the table it belongs in: "" (top level), "data", "features[]", ...


def config_keys() -> List[ConfigKey]:
    """Every leaf key of ``PipelineConfig``, depth first; lists of sections (``features``)
    get a row of their own and their fields as ``features[].<field>``."""
    return list(_walk(PipelineConfig, "", ""))


def _walk(cls: type, prefix: str, section: str) -> Iterator[ConfigKey]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, key = hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(hint):
            yield from _walk(hint, key + ".", key)
            continue
        yield ConfigKey(key, type_text(hint), default_text(f), section)
        item = _list_item(hint)
        if item is not None and dataclasses.is_dataclass(item):
            yield from _walk(item, key + "[].", key + "[]")


def _list_item(hint: Any) -> Any:
    if typing.get_origin(hint) in (tuple, list):
        return typing.get_args(hint)[0]
    return None


def type_text(hint: Any) -> str:
    """The YAML type a key takes, in words: ``int``, ``list of string``, ``one of a, b``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return "section"
    if origin is typing.Union:
        return type_text(next(a for a in args if a is not type(None))) + " or null"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (tuple, list):
        return "list of " + ("sections" if dataclasses.is_dataclass(args[0]) else type_text(args[0]))
    if origin is collections.abc.Mapping:
        return "mapping of " + type_text(args[1])
    return {"str": "string", "int": "int", "float": "float", "bool": "bool"}.get(hint.__name__, hint.__name__)


def default_text(f: dataclasses.Field) -> str:
    """The default as YAML flow text (``2000``, ``[hour, weekday]``, ``""``), or ``required``."""
    if f.default is not dataclasses.MISSING:
        return yaml_text(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return yaml_text(f.default_factory())
    return REQUIRED


def yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):  # quoted when YAML would read it as something else ("1", ",", "")
        return value if _reads_back(value) else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if isinstance(value, collections.abc.Mapping):
        return "{" + ", ".join(f"{k}: {yaml_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _reads_back(text: str) -> bool:
    try:
        return bool(text) and yaml.safe_load(f"[{text}]") == [text]
    except yaml.YAMLError:
        return False


def row(key: ConfigKey, meaning: str = "") -> str:
    """A docs/config.md table row; the default cell is what the test compares."""
    default = key.default_text if key.default_text == REQUIRED else f"`{key.default_text}`"
    return f"| `{key.key}` | {key.type_text} | {default} | {meaning} |"


def by_section() -> Dict[str, List[ConfigKey]]:
    """The keys grouped by section, sections in the order their first key appears."""
    sections: Dict[str, List[ConfigKey]] = {}
    for k in config_keys():
        sections.setdefault(k.section, []).append(k)
    return sections


if __name__ == "__main__":
    for section, keys in by_section().items():
        print(f"\n## `{section}`\n" if section else "\n## Top level\n")
        print("| key | type | default | meaning |\n| --- | --- | --- | --- |")
        print("\n".join(row(k) for k in keys))
