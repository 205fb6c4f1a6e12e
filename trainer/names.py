"""How Transform names its outputs and vocabulary files.

The bottom of the trainer: the feature kinds (``trainer.kinds``) name their
outputs with these, and ``trainer.features`` (which asks the kinds what the
model consumes) re-exports them, so neither imports the other for a name.
"""
from __future__ import annotations


def transformed_name(name: str) -> str:
    """The name Transform gives the output derived from raw input ``name``."""
    return f"{name}_xf"


def missing_indicator_name(name: str) -> str:
    return transformed_name(f"{name}_missing")


def vocabulary_name(name: str) -> str:
    """The vocabulary file name Transform writes for a categorical feature."""
    return f"vocab_{name}"
