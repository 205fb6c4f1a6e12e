"""The label record of a statement's nearest already-rated claims.

Why: a fact-checker's first question is "has this been checked before?".
LIAR's statements repeat and paraphrase each other (the same talking point,
re-worded, rated again), and claims on the same narrow topic share a truth
level. For each statement this module takes its ``k`` nearest training
statements by sentence-encoder cosine (``trainer.sentence_encoder``) and
returns their labels' distribution, weighted by a softmax over similarity,
plus the best similarity (how close the nearest rated claim is).

Honest by construction, like the speaker record: the index holds training
rows only, and a training row sees only index rows of other folds (folds by
the statement's hash), so no row ever reads its own label.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

_QUERY_CHUNK = 1024  # rows per similarity block: 1,024 x 10,000 floats = 40 MB


def statement_folds(statements: Sequence[str], folds: int) -> np.ndarray:
    """Each statement's fold: MD5 of its UTF-8 text mod ``folds`` (stable across runs
    and machines, and equal for identical statements, so a duplicate never serves
    as its own neighbour)."""
    return np.array([int(hashlib.md5(s.encode("utf-8")).hexdigest(), 16) % folds for s in statements],
                    np.int64)


@dataclass(frozen=True)
class NeighbourIndex:
    """Unit-length vectors of rated statements, their class ids and folds."""
    vectors: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        n = len(self.vectors)
        if len(self.labels) != n or len(self.folds) != n:
            raise ValueError(f"neighbour index: {n} vectors but {len(self.labels)} labels "
                             f"and {len(self.folds)} folds")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise ValueError(f"neighbour index: labels must be class ids in [0, {self.num_classes})")

    def nearest(self, queries: np.ndarray, k: int, temperature: float,
                query_folds: Optional[np.ndarray] = None) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per block of queries: the ``k`` nearest index rows, their cosines (-inf where
        unusable) and softmax weights over ``temperature`` x cosine (0 where unusable).
        With ``query_folds``, index rows of the query's own fold are skipped (training
        rows: out-of-fold); without, every index row counts (new rows)."""
        if k < 1:
            raise ValueError(f"claim neighbours: k must be at least 1, got {k}")
        k = min(k, len(self.vectors))
        for start in range(0, len(queries), _QUERY_CHUNK):
            block = queries[start:start + _QUERY_CHUNK]
            if k == 0:
                empty = np.zeros((len(block), 0))
                yield empty.astype(np.int64), empty, empty
                continue
            sims = block @ self.vectors.T
            if query_folds is not None:
                same = query_folds[start:start + _QUERY_CHUNK, None] == self.folds[None, :]
                sims = np.where(same, -np.inf, sims)
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")  # nearest first
            top, top_sims = np.take_along_axis(top, order, 1), np.take_along_axis(top_sims, order, 1)
            usable = np.isfinite(top_sims)
            weights = np.where(usable, np.exp(temperature * (np.where(usable, top_sims, 0.0) - 1.0)), 0.0)
            totals = weights.sum(axis=1, keepdims=True)
            yield top, top_sims, np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)

    def label_distribution(self, queries: np.ndarray, k: int, temperature: float,
                           query_folds: Optional[np.ndarray] = None) -> np.ndarray:
        """[n, num_classes + 1]: the neighbours' weighted label distribution, then the
        best cosine (-1 when no index row is usable)."""
        blocks = []
        for top, top_sims, weights in self.nearest(queries, k, temperature, query_folds):
            block = np.zeros((len(top), self.num_classes + 1), np.float32)
            for j in range(top.shape[1]):
                np.add.at(block, (np.arange(len(top)), self.labels[top[:, j]]), weights[:, j])
            best = top_sims[:, 0] if top.shape[1] else np.full(len(top), -np.inf)
            block[:, -1] = np.where(np.isfinite(best), np.clip(best, -1.0, 1.0), -1.0)
            blocks.append(block)
        return np.concatenate(blocks) if blocks else np.zeros((0, self.num_classes + 1), np.float32)

    def record_tokens(self, queries: np.ndarray, classes: Sequence[str], k: int, temperature: float,
                      repeats: int, query_folds: Optional[np.ndarray] = None) -> List[List[str]]:
        """The record as tokens, for a bag-of-ids feature: each neighbour's class name
        ``round(weight x repeats)`` times (the nearest at least once), then
        ``similarity-<d>`` for the best cosine's first decimal (0-9). A bag's mean
        embedding is then a linear map of the weighted label distribution, which
        every existing feature path (Transform, edge exports, serving) already
        handles. No usable neighbour: no tokens (the feature is missing)."""
        out: List[List[str]] = []
        for top, top_sims, weights in self.nearest(queries, k, temperature, query_folds):
            counts = np.rint(weights * repeats).astype(np.int64)
            if counts.shape[1]:
                counts[:, 0] = np.maximum(counts[:, 0], 1)
            for row in range(len(top)):
                if not top.shape[1] or not np.isfinite(top_sims[row, 0]):
                    out.append([])
                    continue
                tokens = [classes[self.labels[top[row, j]]] for j in range(top.shape[1])
                          if np.isfinite(top_sims[row, j]) for _ in range(counts[row, j])]
                bucket = int(np.clip(np.floor(top_sims[row, 0] * 10), 0, 9))
                out.append(tokens + [f"similarity-{bucket}"])
        return out
