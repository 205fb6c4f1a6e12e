"""Reading a dataset config: YAML, ``extends``, ``--set`` overrides, typing, checks.

``load_config`` turns a file into a frozen ``common.config.PipelineConfig``;
the types are checked here field by field, the cross-field rules per section
in ``common.checks``.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import os
import typing
from typing import Any, Dict, Literal, Mapping, Sequence, Tuple

import yaml

from common.checks import check_config
from common.config import ConfigError, PipelineConfig


def load_config(path: str, overrides: Sequence[str] = (), require_data: bool = True) -> PipelineConfig:
    """Reads, overrides (``a.b=value``) and validates a dataset config file.

    ``require_data=False`` is for callers that never read the training data
    (the serving gateway, manifests, the extension bundler): a serving host
    has the model repository, not the dataset.

    A file may start from another one (``extends: liar.yaml``, relative to its
    own directory): mappings are merged key by key, anything else is replaced,
    so a variant (binary labels, the leaky audit) is a few lines, not a copy.
    """
    raw = _read_yaml(path, seen=())
    for override in overrides:
        _apply_override(raw, override, path)
    raw["source_file"] = os.path.abspath(path)
    config = _build(PipelineConfig, raw, path, "")
    check_config(config, path, require_data)
    return _without_inactive_features(config)


def _read_yaml(path: str, seen: Tuple[str, ...]) -> Dict[str, Any]:
    if not os.path.isfile(path):
        where = f" (extended by {seen[-1]})" if seen else ""
        raise ConfigError(f"{path}: config file not found{where}")
    if os.path.abspath(path) in seen:
        raise ConfigError(f"{path}: key 'extends': a cycle through {list(seen)}")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: key 'extends': expected a config file name, got {parent!r}")
    base = _read_yaml(os.path.join(os.path.dirname(os.path.abspath(path)), parent),
                      seen + (os.path.abspath(path),))
    return _merge(base, raw)


def _merge(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _without_inactive_features(config: PipelineConfig) -> PipelineConfig:
    """The honest model never sees features marked ``leaky`` (unless ``leaky: true``)."""
    if config.leaky:
        return config
    return dataclasses.replace(config, features=tuple(f for f in config.features if not f.leaky))


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> PipelineConfig:
    """Validates an already-parsed config (used by components that receive it as JSON)."""
    config = _build(PipelineConfig, dict(raw), source, "")
    check_config(config, source)
    return _without_inactive_features(config)


def _apply_override(raw: Dict[str, Any], override: str, path: str) -> None:
    if "=" not in override:
        raise ConfigError(f"{path}: override {override!r}: expected KEY=VALUE, e.g. trainer.train_steps=200")
    key, value = override.split("=", 1)
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: override {key!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(value)


def _build(cls: type, raw: Any, path: str, prefix: str) -> Any:
    where = prefix or "<top level>"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: key '{where}': expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{path}: key '{key}': unknown key; expected one of {sorted(fields)}")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: key '{key}': required but missing")
            continue
        values[name] = _convert(hints[name], raw[name], path, key)
    return cls(**values)


def _convert(hint: Any, value: Any, path: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, key)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, path, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: key '{key}': expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: key '{key}': expected a list, got {value!r}")
        item = args[0]
        return tuple(_convert(item, v, path, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: key '{key}': expected a mapping, got {value!r}")
        vt = args[1]
        return {str(k): _convert(vt, v, path, f"{key}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: key '{key}': expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: key '{key}': expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: key '{key}': expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: key '{key}': expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} for {key}")
