"""TextBaselines: majority class and TF-IDF logistic regression on the raw text.

Custom because these baselines need the raw statement and the raw class names
(TrivialBaselines reads Transform's integer outputs) and scikit-learn, which
TFMA does not run. Fitted on the train split, scored on every other split
(eval, and test when the config names a test file) with the same figures as
the TFX model's error analysis: six-way accuracy, macro-F1, binary accuracy.
Written as JSON into a BaselineMetrics artifact, so ML Metadata tracks them.
"""

import json
import os
from typing import Dict, List

import numpy as np

from components import classification_metrics as cm
from components import raw_examples
from components.baselines import BaselineMetrics
from components.tfx_api import tfx

TEXT_BASELINES_FILE = "text_baselines.json"


def fit_and_score(train_text: List[str], train_labels: np.ndarray, eval_text: List[str],
                  eval_labels: np.ndarray, classes: List[str], positive: List[int],
                  seed: int) -> Dict[str, dict]:
    """Majority class and TF-IDF (word 1-2 grams) logistic regression: six-way and
    a separately fitted binary model, both scored on ``eval``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    n = len(classes)
    eval_binary = cm.fold(eval_labels, positive)
    majority = int(np.bincount(train_labels, minlength=n).argmax())
    majority_binary = int(np.bincount(cm.fold(train_labels, positive), minlength=2).argmax())
    result = {"majority_class": {
        **cm.scores(eval_labels, np.full_like(eval_labels, majority), n,
                    eval_binary, np.full_like(eval_binary, majority_binary)),
        "predicts": classes[majority]}}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
    x_train, x_eval = vectorizer.fit_transform(train_text), vectorizer.transform(eval_text)
    multi = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x_train, train_labels)
    binary = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(
        x_train, cm.fold(train_labels, positive))
    result["tfidf_logistic_regression"] = cm.scores(
        eval_labels, multi.predict(x_eval), n, eval_binary, binary.predict(x_eval))
    result["tfidf_logistic_regression"]["vocabulary"] = int(len(vectorizer.vocabulary_))
    return result


@tfx.dsl.components.component
def TextBaselines(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    baselines: tfx.dsl.components.OutputArtifact[BaselineMetrics],
    config_json: tfx.dsl.components.Parameter[str],
) -> None:
    """Writes text_baselines.json: {split: {baseline: figures}} for every non-train split."""
    from common.executor_config import config_from_slice

    cfg = config_from_slice(json.loads(config_json), source="TextBaselines")
    text_col = next(f.column for f in cfg.features if f.name == cfg.evaluation.text_baseline_feature)
    classes = list(cfg.label.classes)
    positive = cfg.label.positive_class_ids
    splits = raw_examples.by_split(examples)
    train = splits.pop("train")
    train_labels = cm.class_ids(raw_examples.string_column(train, cfg.label.column), classes, "split train")
    result = {}
    for split, records in sorted(splits.items()):
        labels = cm.class_ids(raw_examples.string_column(records, cfg.label.column), classes, f"split {split}")
        result[split] = fit_and_score(raw_examples.string_column(train, text_col), train_labels,
                                      raw_examples.string_column(records, text_col), labels, classes,
                                      positive, cfg.trainer.seed)
    with open(os.path.join(baselines.uri, TEXT_BASELINES_FILE), "w") as f:
        json.dump(result, f, indent=2)
