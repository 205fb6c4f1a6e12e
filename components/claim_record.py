"""ClaimNeighbours: adds each example's claim-neighbour record as a string column.

Custom because TFX has no component that derives a feature from other rows'
labels through a pretrained encoder, and Transform cannot: its graph must run
in TF Serving and the edge runtimes, and the encoder (``components.
sentence_encoder``, NumPy) and the nearest-neighbour search over the training
split are neither (both live on the trainer floor, with the record's format in
``trainer.claim_index``, because the serving gateway makes the record of a
request's statement with the same code). So the record is made here, between ExampleGen and
StatisticsGen, and every downstream component (statistics, schema check,
Transform, Evaluator, InfraValidator, analyses) sees it as an ordinary string
column ("false,false,true,similarity-8": one value per row, as a serving request
sends it), read by an ordinary ``multi_categorical`` feature.

The index is built from the train split only; training rows read other folds
(``trainer.claim_neighbours``), every other split reads the whole index. The
index (vectors, class ids, folds) is written as a ClaimIndex artifact, so ML
Metadata links every model to the index its features came from, and the Pusher
copies it into the pushed version (``components.pusher``), where the gateway
makes a served statement's record against the same training rows.
"""

import json
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
from tfx.types.artifact import Artifact

from components import classification_metrics as cm
from components import raw_examples
from components.tfx_api import tfx
from trainer.claim_index import RecordSpec, record_tokens, record_value, write_index
from trainer.claim_neighbours import NeighbourIndex, statement_folds

_OUTPUT_FILE = "data_tfrecord-00000-of-00001.gz"  # ExampleGen's naming


class ClaimIndex(Artifact):
    """The claim-neighbour index: training statements' vectors, class ids and folds."""
    # re-exported by components/__init__.py, as Kubeflow V2 imports <module>.<Class>
    TYPE_NAME = "components.ClaimIndex"


def with_record(record: bytes, column: str, tokens: List[str], separator: str) -> bytes:
    """The serialized example with ``column`` set to ``tokens`` joined by ``separator``
    (absent when empty): one value per row, as a serving request sends it."""
    example = tf.train.Example.FromString(record)
    if column in example.features.feature:
        del example.features.feature[column]
    if tokens:
        example.features.feature[column].bytes_list.value.append(record_value(tokens, separator).encode("utf-8"))
    return example.SerializeToString()


def record_separator(cfg) -> str:
    """The separator of the multi-valued feature that reads the record column."""
    return next(f.separator for f in cfg.features if f.column == cfg.claim_neighbours.column)


def record_spec(cfg) -> RecordSpec:
    """The record's settings from the config, as the index stores them for serving."""
    nb = cfg.claim_neighbours
    return RecordSpec(column=nb.column, text=nb.text, separator=record_separator(cfg),
                      classes=tuple(cfg.label.classes), k=nb.k, temperature=nb.temperature,
                      repeats=nb.repeats, folds=nb.folds)


def build_records(cfg, splits: Dict[str, List[bytes]],
                  encoder) -> Tuple[Dict[str, List[List[str]]], NeighbourIndex]:
    """The record tokens of every row of every split, and the index they read."""
    from trainer.sentence_encoder import cached_encode

    nb, classes, spec = cfg.claim_neighbours, list(cfg.label.classes), record_spec(cfg)
    if "train" not in splits:
        raise ValueError(f"ClaimNeighbours: no 'train' split among {sorted(splits)}; the index is "
                         "built from the training rows")
    train_text = raw_examples.string_column(splits["train"], nb.text)
    labels = cm.class_ids(raw_examples.string_column(splits["train"], cfg.label.column), classes, "split train")
    has_text = np.array([bool(t.strip()) for t in train_text])
    train_vectors = cached_encode(encoder, train_text)
    folds = statement_folds(train_text, nb.folds)
    index = NeighbourIndex(train_vectors[has_text], labels[has_text], folds[has_text], len(classes))
    tokens = {}
    for split, records in splits.items():
        text = train_text if split == "train" else raw_examples.string_column(records, nb.text)
        vectors = train_vectors if split == "train" else cached_encode(encoder, text)
        query_folds = folds if split == "train" else None
        tokens[split] = record_tokens(index, spec, vectors, text, query_folds)
    return tokens, index


@tfx.dsl.components.component
def ClaimNeighbours(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    enriched: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    index: tfx.dsl.components.OutputArtifact[ClaimIndex],
    config_json: tfx.dsl.components.Parameter[str],
) -> None:
    """Copies every split of ``examples`` with the record column added."""
    from common.executor_config import config_from_slice
    from trainer.sentence_encoder import SentenceEncoder

    cfg = config_from_slice(json.loads(config_json), source="ClaimNeighbours")
    splits = raw_examples.by_split(examples)
    encoder = SentenceEncoder.load()
    tokens, built = build_records(cfg, splits, encoder)
    separator = record_separator(cfg)
    for split, records in splits.items():
        directory = os.path.join(enriched.uri, f"Split-{split}")
        tf.io.gfile.makedirs(directory)
        with tf.io.TFRecordWriter(os.path.join(directory, _OUTPUT_FILE), options="GZIP") as writer:
            for record, row_tokens in zip(records, tokens[split]):
                writer.write(with_record(record, cfg.claim_neighbours.column, row_tokens, separator))
    enriched.split_names = examples.split_names
    enriched.span, enriched.version = examples.span, examples.version
    for key in ("payload_format", "file_format"):
        if examples.has_custom_property(key):
            enriched.set_string_custom_property(key, examples.get_string_custom_property(key))
    write_index(index.uri, built, record_spec(cfg), encoder.weights_key)
