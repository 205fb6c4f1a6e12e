"""docs/config.md lists every config key with its real type and default, and no key that does not exist.

Why: the reference is written by hand (the meanings), but the keys, types and
defaults come from ``common/config.py``; a field added, renamed or re-defaulted
there must show up here, or the reference misleads.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Tuple

import pytest

from testing.config_keys import REQUIRED, config_keys

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "docs", "config.md")
# Keys the loader reads that are not dataclass fields.
LOADER_KEYS = ("extends",)
KEYS = config_keys()


def documented_rows() -> Dict[str, Tuple[str, str]]:
    """key -> (type cell, default cell) of each ``| `key` | type | default | meaning |`` row."""
    rows = {}
    with open(REFERENCE, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"^\| `(?P<key>[^`]+)` \| (?P<type>[^|]*) \| (?P<default>[^|]*) \|", line)
            if match:
                assert match["key"] not in rows, f"docs/config.md: key {match['key']!r} listed twice"
                rows[match["key"]] = (match["type"].strip(), match["default"].strip())
    return rows


ROWS = documented_rows()


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.key)
def test_every_key_is_documented_with_its_type_and_default(key):
    hint = "python -m testing.config_keys prints the row"
    assert key.key in ROWS, f"docs/config.md: no row for {key.key!r} ({hint})"
    documented_type, documented_default = ROWS[key.key]
    default = REQUIRED if key.default_text == REQUIRED else f"`{key.default_text}`"
    assert documented_default == default, (
        f"docs/config.md: {key.key!r} documented with default {documented_default}, the code has {default}")
    assert documented_type == key.type_text, (
        f"docs/config.md: {key.key!r} documented as {documented_type!r}, the code has {key.type_text!r}")


def test_no_documented_key_is_unknown():
    known = {k.key for k in KEYS} | set(LOADER_KEYS)
    unknown = sorted(set(ROWS) - known)
    assert not unknown, f"docs/config.md documents keys the config does not have: {unknown}"
