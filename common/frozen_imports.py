"""Importing TensorFlow, TFX and Beam with Python's cyclic garbage collector off, then
keeping the collector off the modules they leave behind.

Those imports leave a few million long-lived objects (modules, classes, functions,
protobuf descriptors). Every full collection walks all of them, about 0.3 s each here,
and a cold taxi run triggered 15 of them: 4.7 s of its 42 s, plus KerasTuner's own
``gc.collect()`` before each trial. Imports make next to no cyclic garbage, so nothing
is lost by not collecting while they run; afterwards ``gc.freeze()`` moves what they
built to the permanent generation the collector never walks. Objects made later (the
components' graphs, Beam bundles, models) are collected as usual.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
    """Runs the body (the imports) without collecting, then freezes every object alive."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
