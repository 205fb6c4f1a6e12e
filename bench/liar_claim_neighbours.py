"""Does the claim-neighbour record carry signal the current features lack?

5-fold cross-validation on LIAR's *training* file only (folds by statement MD5,
as bench/liar_cv.py), scoring logistic regressions with and without the
neighbour record (``trainer.claim_neighbours``):

* text: TF-IDF of the statement (word 1-2 grams), the text baseline's model;
* full: the same plus one-hot speaker, party, state, job words, context words,
  subjects and the speaker's out-of-fold label record, i.e. the honest
  model's inputs in a linear model.

Training rows read the neighbour record out of fold; held-out rows read the
whole training fold. Prints six-way accuracy, macro-F1 and binary accuracy
(half-true and above) per model. Sentence vectors come through the pipeline's
vector cache (``trainer.sentence_encoder.cached_encode``).

    LIAR_DIR=../shared/datasets/liar .venv/bin/python bench/liar_claim_neighbours.py
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from common.loader import load_config  # noqa: E402
from components import classification_metrics as cm  # noqa: E402
from trainer.claim_neighbours import NeighbourIndex, statement_folds  # noqa: E402
from trainer.sentence_encoder import SentenceEncoder, cached_encode  # noqa: E402


def read_rows(path: str, columns: Sequence[str]) -> List[Dict[str, str]]:
    """The file's rows by the config's column names."""
    with open(path, encoding="utf-8") as f:
        return [dict(zip(columns, row)) for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def speaker_record(train_speakers: List[str], train_labels: np.ndarray, speakers: List[str],
                   num_classes: int, smoothing: float = 5.0) -> np.ndarray:
    counts: Dict[str, np.ndarray] = defaultdict(lambda: np.zeros(num_classes))
    for speaker, label in zip(train_speakers, train_labels):
        counts[speaker][label] += 1
    prior = np.bincount(train_labels, minlength=num_classes) / max(len(train_labels), 1)
    return np.array([(counts[s] + smoothing * prior) / (counts[s].sum() + smoothing)
                     if s in counts else prior for s in speakers])


def design(rows: List[Dict[str, str]], train: np.ndarray, apply: np.ndarray, labels: np.ndarray,
           num_classes: int, full: bool, extra_train: np.ndarray = None, extra_apply: np.ndarray = None):
    """Sparse features for ``train`` rows (fitted on them) and ``apply`` rows."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    def column(name, idx):
        return [rows[i][name].strip().lower() for i in idx]

    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    parts_train = [tfidf.fit_transform(column("statement", train))]
    parts_apply = [tfidf.transform(column("statement", apply))]
    if full:
        for name in ("speaker", "party", "state", "job", "context", "subjects"):
            if name in ("speaker", "party", "state"):
                vectorizer = CountVectorizer(min_df=3, binary=True, analyzer=lambda s: [s])
            else:
                pattern = r"[^,]+" if name == "subjects" else r"(?u)\b\w\w+\b"
                vectorizer = CountVectorizer(min_df=3, binary=True, token_pattern=pattern)
            parts_train.append(vectorizer.fit_transform(column(name, train)) * 0.5)
            parts_apply.append(vectorizer.transform(column(name, apply)) * 0.5)
        # the speaker record: out of fold for training rows, all training rows otherwise
        inner = statement_folds(column("statement", train), 5)
        speakers = np.array(column("speaker", train))
        record_train = np.zeros((len(train), num_classes))
        for fold in range(5):
            held = inner == fold
            record_train[held] = speaker_record(speakers[~held].tolist(), labels[train][~held],
                                                speakers[held].tolist(), num_classes)
        record_apply = speaker_record(speakers.tolist(), labels[train], column("speaker", apply), num_classes)
        parts_train.append(csr_matrix(record_train * 2))
        parts_apply.append(csr_matrix(record_apply * 2))
    if extra_train is not None:
        parts_train.append(csr_matrix(extra_train * 2))
        parts_apply.append(csr_matrix(extra_apply * 2))
    return hstack(parts_train).tocsr(), hstack(parts_apply).tocsr()


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=20.0)
    args = parser.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    cfg = load_config(os.path.join(REPO, "configs", "liar.yaml"))
    rows = read_rows(os.path.join(cfg.data_path, cfg.data.files["train"]), [c.name for c in cfg.data.columns])
    classes, positive = list(cfg.label.classes), cfg.label.positive_class_ids
    labels = cm.class_ids([r["label"] for r in rows], classes, "train.tsv")
    statements = [r["statement"] for r in rows]
    vectors = cached_encode(SentenceEncoder.load(), statements)
    outer = statement_folds(statements, args.folds)
    results: Dict[str, List[Dict[str, float]]] = defaultdict(list)
    for fold in range(args.folds):
        train, held = np.flatnonzero(outer != fold), np.flatnonzero(outer == fold)
        index = NeighbourIndex(vectors[train], labels[train],
                               statement_folds([statements[i] for i in train], 5), len(classes))
        nb_train = index.label_distribution(vectors[train], args.k, args.temperature, index.folds)
        nb_held = index.label_distribution(vectors[held], args.k, args.temperature)
        for model in ("text", "full"):
            for with_neighbours in (False, True):
                extra = (nb_train, nb_held) if with_neighbours else (None, None)
                x_train, x_held = design(rows, train, held, labels, len(classes), model == "full", *extra)
                fitted = LogisticRegression(max_iter=5000, C=0.3 if model == "full" else 1.0)
                p = fitted.fit(x_train, labels[train]).predict_proba(x_held)
                y = labels[held]
                figures = cm.scores(y, p.argmax(1), len(classes), cm.fold(y, positive),
                                    (cm.positive_probability(p, positive) > 0.5).astype(np.int64))
                name = model + (" + claim neighbours" if with_neighbours else "")
                results[name].append(figures)
        print(f"fold {fold} done", flush=True)
    print(f"\n{'model (5-fold CV on train.tsv)':34s} six-way  macro-F1  binary")
    for name, per_fold in results.items():
        mean = {key: float(np.mean([f[key] for f in per_fold])) for key in ("accuracy", "macro_f1", "binary_accuracy")}
        print(f"{name:34s} {mean['accuracy']:.4f}   {mean['macro_f1']:.4f}    {mean['binary_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
