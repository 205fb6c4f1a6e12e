"""Each executor's slice of the config: the keys its code reads, and nothing else.

Why: an executor gets its config as an execution parameter (Transform's, the
Tuner's and the Trainer's ``custom_config``, a custom component's
``config_json``), and TFX's cache key is an execution's inputs plus its
parameters. With the whole config there, an edit to a serving-only key
(``serving.rest_port``) re-ran the Trainer; and a reset list of what Transform
ignores had to be joined by every new section. Here each executor lists what it
reads (an allow-list), so a new section or key reaches no executor until one
lists it.

The other way round is the dangerous one: a key an executor reads but does not
list reads its default on the receiving side, and an edit to it keeps the stale
cached execution. ``tests/common/test_executor_config.py`` runs every executor's
code on a config that records its reads and checks them against these lists.

A key is a section (``trainer``: the executor takes the section as a whole, so
its future keys are included by default) or a dotted key (``serving.model_name``:
one key of a section that otherwise belongs to another stage).

The receiving side rebuilds a typed config with ``config_from_slice``: the
slice's values, defaults for the rest, validated like any config (so a slice
carries what the checks of its keys compare them with, e.g. ``data`` for
``claim_neighbours``).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

from common.config import PipelineConfig, to_dict
from common.loader import config_from_dict

SLICE_KEY = "pipeline_config"

# Required by the config type (no defaults), so in every slice. Neither costs a
# cache hit in practice: another name is another pipeline (TFX caches per pipeline),
# and another schema file is another ImportSchemaGen import upstream of the model.
_REQUIRED = ("name", "schema")
# What the model inputs are made of. ``leaky`` travels with ``features``: the loader
# drops features marked leaky unless ``leaky`` is true, so without it the receiving
# side would lose the leakage audit's features.
_MODEL_INPUTS = ("label", "features", "leaky")

# preprocessing_fn: the features and the label, nothing else. Its graph does not
# depend on data (ExampleGen reads it) or claim_neighbours (a column made upstream).
TRANSFORM_KEYS: Tuple[str, ...] = _REQUIRED + _MODEL_INPUTS
# tuner_fn: the search space and budget, and the trainer section (default
# hyperparameters, batches, seed, feature dropout, fold loss: nearly all of it).
TUNER_KEYS: Tuple[str, ...] = TRANSFORM_KEYS + ("trainer", "tuner")
# run_fn: the trainer section (tuned values arrive as the hyperparameters artifact,
# never from the tuner section); the export names the model in the edge signature
# and writes the edge files unless serving.edge_exports is false.
TRAINER_KEYS: Tuple[str, ...] = TRANSFORM_KEYS + ("trainer", "serving.model_name", "serving.edge_exports")
# ClaimNeighbours: the record's settings (all written to the index's params.json),
# the label's classes and column, the separator of the feature reading the record;
# data because claim_neighbours.text is checked against data.columns.
CLAIM_NEIGHBOURS_KEYS: Tuple[str, ...] = TRANSFORM_KEYS + ("claim_neighbours", "data")
# ErrorAnalysis: the label (classes, binary fold), the features' columns, and the
# features a reduced request keeps.
ERROR_ANALYSIS_KEYS: Tuple[str, ...] = TRANSFORM_KEYS + ("evaluation.reduced_features",)
# TextBaselines: the text feature, the label's column and classes, the seed of
# its logistic regressions.
TEXT_BASELINES_KEYS: Tuple[str, ...] = TRANSFORM_KEYS + ("evaluation.text_baseline_feature", "trainer.seed")


def transform(cfg: PipelineConfig) -> Dict[str, Any]:
    """Transform's ``custom_config``."""
    return config_slice(cfg, TRANSFORM_KEYS)


def tuner(cfg: PipelineConfig) -> Dict[str, Any]:
    """The Tuner's ``custom_config``."""
    return config_slice(cfg, TUNER_KEYS)


def trainer(cfg: PipelineConfig) -> Dict[str, Any]:
    """The Trainer's ``custom_config``."""
    return config_slice(cfg, TRAINER_KEYS)


def claim_neighbours(cfg: PipelineConfig) -> Dict[str, Any]:
    """ClaimNeighbours' ``config_json`` (as a dict; the pipeline serialises it)."""
    return config_slice(cfg, CLAIM_NEIGHBOURS_KEYS)


def error_analysis(cfg: PipelineConfig) -> Dict[str, Any]:
    """ErrorAnalysis' ``config_json`` (as a dict)."""
    return config_slice(cfg, ERROR_ANALYSIS_KEYS)


def text_baselines(cfg: PipelineConfig) -> Dict[str, Any]:
    """TextBaselines' ``config_json`` (as a dict)."""
    return config_slice(cfg, TEXT_BASELINES_KEYS)


def config_slice(cfg: PipelineConfig, keys: Sequence[str]) -> Dict[str, Any]:
    """``{SLICE_KEY: {...}}``: the JSON-safe values of ``keys`` (sections or dotted keys)."""
    full = to_dict(cfg)
    picked: Dict[str, Any] = {}
    for key in keys:
        *sections, leaf = key.split(".")
        source, target = full, picked
        for section in sections:
            source, target = source[section], target.setdefault(section, {})
        target[leaf] = source[leaf]
    return {SLICE_KEY: picked}


def config_from_slice(custom_config: Mapping[str, Any], source: str) -> PipelineConfig:
    """The typed config an executor works with: its slice, defaults for the rest.

    ``source`` names the executor in validation errors."""
    if SLICE_KEY not in custom_config:
        raise ValueError(f"{source}: expected the config slice under {SLICE_KEY!r} "
                         f"(common.executor_config), got keys {sorted(custom_config)}")
    return config_from_dict(custom_config[SLICE_KEY], source=source)
