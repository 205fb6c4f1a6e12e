"""TimeSplit: the newest span is the eval split, the spans before it the train split.

Custom because TFX has no time-aware split: ExampleGen splits one span by
hash buckets, and a resolver hands over several span artifacts, each with its
own split names fixed at ingestion. A span that is the eval data today is
training data next quarter, so the assignment is made here, per run, from the
window the span resolver (components.span_inputs) read from ML Metadata. The
output is one ordinary Examples artifact with ``train`` and ``eval`` splits, so
StatisticsGen, the gate, Transform, Trainer and Evaluator read it unchanged;
the spans, their versions and artifact ids are recorded on it in ML Metadata.
"""

import json
import os
from typing import Dict, List, Optional

from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.artifact import Artifact

from components.tfx_api import tfx

SPAN_PROPERTY, VERSION_PROPERTY = "span", "version"  # ExampleGen's custom property names
# Custom properties TimeSplit records on its output.
TRAIN_SPANS, EVAL_SPAN, SPAN_VERSIONS = "train_spans", "eval_span", "span_versions"
_COPIED_PROPERTIES = ("payload_format", "file_format")


class SpanWindowError(RuntimeError):
    """Too few spans to split by time; the message names the spans found."""


def _int_property(artifact: Artifact, key: str) -> int:
    """ExampleGen writes span/version as ints (older TFX as strings); -1 when absent."""
    if not artifact.has_custom_property(key):
        return -1
    value = artifact.get_custom_property(key)
    return int(value) if value not in (None, "") else -1


def newest_versions(spans: List[Artifact]) -> Dict[int, Artifact]:
    """One artifact per span: the highest version, then the newest ingestion (largest id).

    A span ingested again (its files changed, or a new ``{VERSION}``) appears
    twice in ML Metadata; only the latest ingestion is data to train on."""
    chosen: Dict[int, Artifact] = {}
    for artifact in spans:
        span = _int_property(artifact, SPAN_PROPERTY)
        best = chosen.get(span)
        key = (_int_property(artifact, VERSION_PROPERTY), artifact.id or 0)
        if best is None or key > (_int_property(best, VERSION_PROPERTY), best.id or 0):
            chosen[span] = artifact
    return chosen


def _copy_split(source: Artifact, span: int, destination: str) -> None:
    """The files of a span's one split into ``destination``, prefixed by the span number."""
    split = artifact_utils.decode_split_names(source.split_names)[0]
    source_dir = artifact_utils.get_split_uri([source], split)
    fileio.makedirs(destination)
    for name in sorted(fileio.listdir(source_dir)):
        fileio.copy(os.path.join(source_dir, name), os.path.join(destination, f"span-{span}-{name}"),
                    overwrite=True)


def split_by_time(spans: List[Artifact], examples: Artifact) -> None:
    """Writes ``examples``: split eval = the newest span, train = the older spans."""
    chosen = newest_versions(spans)
    if len(chosen) < 2:
        raise SpanWindowError(
            f"TimeSplit: a split by time needs at least 2 spans (train on the older, evaluate on the "
            f"newest), but ML Metadata has span(s) {sorted(chosen)} for this pipeline; add older spans "
            "under data.path matching data.spans.pattern")
    eval_span = max(chosen)
    train_spans = sorted(s for s in chosen if s != eval_span)
    for split, members in (("train", train_spans), ("eval", [eval_span])):
        for span in members:
            _copy_split(chosen[span], span, os.path.join(examples.uri, f"Split-{split}"))
    record_window(examples, eval_span, train_spans,
                  {s: {"version": _int_property(a, VERSION_PROPERTY), "artifact_id": a.id}
                   for s, a in chosen.items()})
    newest = chosen[eval_span]
    for key in _COPIED_PROPERTIES:
        if newest.has_custom_property(key):
            examples.set_string_custom_property(key, newest.get_string_custom_property(key))


def record_window(examples: Artifact, eval_span: int, train_spans: List[int],
                  versions: Dict[int, Dict[str, Optional[int]]]) -> None:
    """The split names and the window's spans on ``examples``, for ML Metadata and the run
    summary (pipeline.results): the newest span, the training spans, each span's version."""
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.span = eval_span
    examples.set_int_custom_property(SPAN_PROPERTY, eval_span)
    examples.set_int_custom_property(EVAL_SPAN, eval_span)
    examples.set_string_custom_property(TRAIN_SPANS, ",".join(str(s) for s in train_spans))
    examples.set_string_custom_property(SPAN_VERSIONS, json.dumps(
        {str(s): versions[s] for s in sorted(versions)}))


@tfx.dsl.components.component
def TimeSplit(
    spans: tfx.dsl.components.InputArtifact[List[tfx.types.standard_artifacts.Examples]],
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
) -> None:
    """The window's spans as one Examples artifact split by time (see the module docstring)."""
    split_by_time(spans, examples)
