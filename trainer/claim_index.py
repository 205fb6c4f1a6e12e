"""The claim-neighbour index on disk, and the record it makes for statements.

Why on the trainer floor: the record is a model input made outside the
Transform graph, so two callers must make it the same way. ClaimNeighbours
(``components/claim_record.py``) builds the index from the training split and
writes the record of every row the model is trained and evaluated on; the
serving gateway (``serving/claim_records.py``) makes the record of a request's
statement from the index pushed with the model. Both go through
``record_tokens`` and ``record_value`` below, with the settings the index was
written with (``params.json``), so the served model is the evaluated one.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from trainer.claim_neighbours import NeighbourIndex

INDEX_FILE = "index.npz"    # vectors, class ids and folds of the training statements
PARAMS_FILE = "params.json"  # the record's settings (RecordSpec), classes and encoder


@dataclasses.dataclass(frozen=True)
class RecordSpec:
    """How the record is made and where it goes: the column it fills, the text
    column it reads, the multi-valued feature's separator, the class names in
    class-id order and the neighbour settings (``common.config`` claim_neighbours)."""
    column: str
    text: str
    separator: str
    classes: Tuple[str, ...]
    k: int
    temperature: float
    repeats: int
    folds: int


def record_value(tokens: Sequence[str], separator: str) -> str:
    """One row's record as the column holds it: its tokens joined ("false,true,similarity-8")."""
    return separator.join(tokens)


def record_tokens(index: NeighbourIndex, spec: RecordSpec, vectors: np.ndarray, texts: Sequence[str],
                  query_folds: Optional[np.ndarray] = None) -> List[List[str]]:
    """Each text's record tokens from its sentence vector; none for a blank text (the
    column is then left out). ``query_folds``: training rows read other folds only."""
    made = index.record_tokens(vectors, list(spec.classes), spec.k, spec.temperature, spec.repeats,
                               query_folds)
    return [tokens if text.strip() else [] for tokens, text in zip(made, texts)]


def write_index(directory: str, index: NeighbourIndex, spec: RecordSpec, encoder_sha256: str) -> None:
    """``index.npz`` and ``params.json`` into ``directory`` (a ClaimIndex artifact's uri)."""
    np.savez(os.path.join(directory, INDEX_FILE), vectors=index.vectors, labels=index.labels,
             folds=index.folds)
    params = {**dataclasses.asdict(spec), "classes": list(spec.classes),
              "encoder": "all-MiniLM-L6-v2 (trainer.sentence_encoder)", "encoder_sha256": encoder_sha256}
    with open(os.path.join(directory, PARAMS_FILE), "w") as f:
        json.dump(params, f, indent=2)


def read_index(directory: str) -> Tuple[NeighbourIndex, RecordSpec, str]:
    """The index, its record settings and the SHA-256 of the encoder weights it was
    built with, from a directory ``write_index`` wrote."""
    params_path = os.path.join(directory, PARAMS_FILE)
    try:
        with open(params_path) as f:
            params = json.load(f)
        fields = {field.name: params[field.name] for field in dataclasses.fields(RecordSpec)}
        arrays = np.load(os.path.join(directory, INDEX_FILE))
        vectors, labels, folds = arrays["vectors"], arrays["labels"], arrays["folds"]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"claim index {directory}: expected {INDEX_FILE} (vectors, labels, folds) "
                         f"and {PARAMS_FILE} with {[f.name for f in dataclasses.fields(RecordSpec)]} "
                         f"and encoder_sha256: {err!r}") from err
    spec = RecordSpec(**{**fields, "classes": tuple(fields["classes"])})
    return (NeighbourIndex(vectors, labels, folds, len(spec.classes)), spec,
            str(params.get("encoder_sha256", "")))
