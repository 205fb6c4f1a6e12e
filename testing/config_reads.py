"""Which config keys an executor's code reads, recorded while it really runs.

Why: each executor gets only its slice of the config (``common.executor_config``),
and a key it reads but its slice lacks silently reads the default, so an edit to
that key keeps a stale cached execution. The list of keys cannot be checked by
reading the code alone; running the code on a config that records its reads can.

``recording_reads()`` wraps ``executor_config.config_from_slice`` (the one way an
executor turns its slice into a typed config) for the duration of a ``with``
block: every config it returns records the dotted keys read from it
(``trainer.seed``). A field holding plain values or a tuple of dataclasses
(``features``) is one key; a section (``trainer``) records its fields.
``dataclasses.replace`` copying a config is not a read (the copy records its own).
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import Any, Iterable, Iterator, List, Set

from common import executor_config


def traced(config: Any, reads: Set[str], prefix: str = "") -> Any:
    """A copy of the config dataclass ``config`` that adds each key read to ``reads``."""
    cls = type(config)
    names = {f.name for f in dataclasses.fields(cls)}

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in names and not dataclasses.is_dataclass(value) and not _copying():
            reads.add(prefix + name)
        return value

    recording = type(f"Recording{cls.__name__}", (cls,), {"__getattribute__": __getattribute__})
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(config, f.name)
        values[f.name] = traced(value, reads, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else value
    return recording(**values)


def _copying() -> bool:
    """Whether the read comes from ``dataclasses.replace`` (a copy, whose reads the copy records)."""
    caller = sys._getframe(2)
    return caller.f_code.co_name == "replace" and caller.f_globals.get("__name__") == "dataclasses"


@contextlib.contextmanager
def recording_reads() -> Iterator[Set[str]]:
    """Within the block, configs rebuilt from a slice record their reads into the yielded set."""
    reads: Set[str] = set()
    real = executor_config.config_from_slice

    def rebuild(custom_config, source: str):
        return traced(real(custom_config, source), reads)

    executor_config.config_from_slice = rebuild
    try:
        yield reads
    finally:
        executor_config.config_from_slice = real


def outside(reads: Iterable[str], keys: Iterable[str]) -> List[str]:
    """The reads that no key covers (a key covers itself and the keys below it)."""
    keys = list(keys)
    return sorted(r for r in reads if not any(r == k or r.startswith(k + ".") for k in keys))
