"""Spans: ExampleGen over a ``{SPAN}`` pattern, the spans on disk, and the window from ML Metadata.

TFX's ExampleGen ingests one span per execution (its ``range_config`` accepts
a single span) and records ``span`` (and ``version`` with a ``{VERSION}``
spec) on the Examples artifact in ML Metadata. A training window of several
spans is therefore read back from ML Metadata, not from one ExampleGen: a
resolver with TFX's ``SpanRangeStrategy`` (a rolling range of the newest
``train_spans + 1`` spans) hands them to TimeSplit (components.time_split),
which makes the newest span the eval split and the rest the train split. Each
run's ExampleGen ingests the newest span; older spans of the window are
ingested once each by a backfill run of ExampleGen alone with a static range
(pipeline.span_backfill).
"""
from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, Optional

from common.checks.data import SPAN_SPEC, VERSION_SPEC
from common.config import PipelineConfig
from components.csv_example_gen import CsvExampleGen
from components.tfx_api import tfx

# An ingested span has this one split; TimeSplit decides whether it trains or evaluates.
SPAN_SPLIT = "span"
EXAMPLE_GEN_ID = "CsvExampleGen"
WINDOW_RESOLVER_ID = "span_window_resolver"


def span_input_config(cfg: PipelineConfig) -> tfx.proto.Input:
    return tfx.proto.Input(splits=[tfx.proto.Input.Split(name=SPAN_SPLIT, pattern=cfg.data.spans.pattern)])


def build_span_example_gen(cfg: PipelineConfig, span: Optional[int] = None) -> CsvExampleGen:
    """CsvExampleGen over the span pattern: the newest span on disk, or ``span`` (a backfill).

    All rows of a span land in one split (one hash bucket): the split by time
    happens downstream, once it is known which spans are the window."""
    range_config = None
    if span is not None:
        range_config = tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span))
    return CsvExampleGen(
        input_base=cfg.data_path,
        input_config=span_input_config(cfg),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(
            splits=[tfx.proto.SplitConfig.Split(name=SPAN_SPLIT, hash_buckets=1)])),
        range_config=range_config).with_id(EXAMPLE_GEN_ID)


def build_span_window_resolver(cfg: PipelineConfig, example_gen) -> tfx.dsl.Resolver:
    """The newest ``train_spans + 1`` spans ExampleGen has ingested, from ML Metadata.

    The channel names ExampleGen's node and output but is not its output channel:
    an output channel would resolve to this run's artifact only, while the
    window needs the earlier runs' spans too. The explicit upstream edge makes
    the resolver run after this run's ExampleGen has ingested the newest span."""
    window = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": tfx.proto.RangeConfig(
            rolling_range=tfx.proto.RollingRange(num_spans=cfg.data.spans.train_spans + 1))},
        spans=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                              producer_component_id=example_gen.id, output_key="examples"),
    ).with_id(WINDOW_RESOLVER_ID)
    window.add_upstream_node(example_gen)
    return window


def _pattern_regex(pattern: str) -> re.Pattern:
    """A regex for paths matching ``pattern`` that captures the span (and version)."""
    out = []
    for part in re.split(r"(\{SPAN\}|\{VERSION\}|\*|\?)", pattern):
        if part == SPAN_SPEC:
            out.append(r"(?P<span>\d+)")
        elif part == VERSION_SPEC:
            out.append(r"(?P<version>\d+)")
        elif part == "*":
            out.append(r"[^/]*")
        elif part == "?":
            out.append(r"[^/]")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + r"\Z")


def spans_on_disk(data_path: str, pattern: str) -> Dict[int, List[str]]:
    """Span number -> the files of that span under ``data_path`` (every version)."""
    wildcard = pattern.replace(SPAN_SPEC, "*").replace(VERSION_SPEC, "*")
    regex = _pattern_regex(pattern)
    spans: Dict[int, List[str]] = {}
    for path in sorted(glob.glob(os.path.join(data_path, wildcard))):
        match = regex.match(os.path.relpath(path, data_path).replace(os.sep, "/"))
        if match and os.path.isfile(path):
            spans.setdefault(int(match.group("span")), []).append(path)
    return spans


def newest_span_files(data_path: str, pattern: str) -> Dict[int, List[str]]:
    """Span number -> the files of its newest ``{VERSION}`` (all files without one), as
    ExampleGen would ingest the span: the same choice TimeSplit makes from ML Metadata."""
    regex = _pattern_regex(pattern)
    newest: Dict[int, List[str]] = {}
    for span, files in spans_on_disk(data_path, pattern).items():
        versions = {}
        for path in files:
            version = regex.match(os.path.relpath(path, data_path).replace(os.sep, "/")).groupdict().get("version")
            versions.setdefault(int(version) if version is not None else -1, []).append(path)
        newest[span] = versions[max(versions)]
    return newest
