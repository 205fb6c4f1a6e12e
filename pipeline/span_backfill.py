"""Backfill: ingest the training window's older spans that ML Metadata does not hold yet.

A run's ExampleGen ingests the newest span only (TFX's ExampleGen takes one
span per execution), and the span resolver reads the window from ML Metadata.
So a new pipeline, or a window made longer, needs the older spans ingested
first: each missing one by a run of ExampleGen alone with a static range, under
the same pipeline name and node id, exactly as if an earlier run had ingested
it. A span counts as ingested when ML Metadata has this ExampleGen's artifact
for it with the same input fingerprint (TFX's: file sizes and modification
times), so a span whose files changed is ingested again as a newer artifact.
"""
from __future__ import annotations

import os
from typing import Callable, List, Set, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.components.example_gen import utils as example_gen_utils

from common.config import PipelineConfig
from components.span_inputs import EXAMPLE_GEN_ID, build_span_example_gen, span_input_config, spans_on_disk
from components.tfx_api import tfx


class SpanDataError(RuntimeError):
    """Too few spans on disk for a split by time; names the directory and pattern."""


def window_spans(cfg: PipelineConfig) -> Tuple[List[int], int]:
    """(the older spans of the window on disk, the newest span): the spans the resolver will
    pick once the newest is ingested (a rolling range by span number, as SpanRangeStrategy's)."""
    on_disk = sorted(spans_on_disk(cfg.data_path, cfg.data.spans.pattern))
    if len(on_disk) < 2:
        raise SpanDataError(
            f"data.spans: a split by time needs at least 2 spans (train on the older, evaluate on the "
            f"newest), found {on_disk or 'none'} in {cfg.data_path} matching data.spans.pattern "
            f"{cfg.data.spans.pattern!r}")
    newest = on_disk[-1]
    first = newest - cfg.data.spans.train_spans
    older = [s for s in on_disk[:-1] if s >= first]
    if not older:
        raise SpanDataError(
            f"data.spans: no span to train on within data.spans.train_spans "
            f"({cfg.data.spans.train_spans}) spans before the newest, {newest}; spans in {cfg.data_path}: "
            f"{on_disk}")
    return older, newest


def fingerprint(cfg: PipelineConfig, span: int) -> str:
    """The input fingerprint ExampleGen computes for ``span`` (the same TFX function)."""
    range_config = tfx.proto.RangeConfig(
        static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span))
    # the function rewrites the patterns it is given, so it gets a fresh copy
    value, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        cfg.data_path, list(span_input_config(cfg).splits), range_config)
    return value


def ingested(metadata_path: str, pipeline_name: str) -> Set[Tuple[int, str]]:
    """(span, input fingerprint) of every span this pipeline's ExampleGen has ingested."""
    if not os.path.exists(metadata_path):
        return set()
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{EXAMPLE_GEN_ID}")
    if node is None:
        return set()
    result = set()
    for artifact in store.get_artifacts_by_context(node.id):
        props = artifact.custom_properties
        if artifact.state == metadata_store_pb2.Artifact.LIVE and "span" in props:
            span = props["span"].int_value or int(props["span"].string_value or 0)
            result.add((span, props[example_gen_utils.FINGERPRINT_PROPERTY_NAME].string_value
                        if example_gen_utils.FINGERPRINT_PROPERTY_NAME in props else ""))
    return result


def backfill(cfg: PipelineConfig, pipeline_root: str, metadata_path: str, beam_args: List[str],
             say: Callable[[str], None] = print) -> List[int]:
    """Ingests each older span of the window that ML Metadata lacks; returns those spans."""
    older, newest = window_spans(cfg)
    have = ingested(metadata_path, cfg.pipeline_name)
    missing = [s for s in older if (s, fingerprint(cfg, s)) not in have]
    say(f"  spans on disk: training window {older}, evaluation span {newest}"
        + (f"; backfilling {missing}" if missing else ""))
    for span in missing:
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name=cfg.pipeline_name, pipeline_root=pipeline_root,
            components=[build_span_example_gen(cfg, span)], enable_cache=True,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                metadata_path),
            beam_pipeline_args=beam_args))
    return missing
