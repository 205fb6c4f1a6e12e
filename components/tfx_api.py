"""The part of TFX's public ``tfx.v1`` API this project uses, without ``tfx.v1``'s imports.

Why: ``from tfx import v1 as tfx`` runs ``tfx/v1/__init__.py``, which imports
every public module, among them ``tfx.v1.extensions`` (Google Cloud AI
Platform and BigQuery clients) and the Kubeflow orchestration: about 7 of
the 22 s a cold ``python -m pipeline run`` spent importing before its first
component on this machine (``import tfx.v1`` 22-23 s against 15 s for the
modules below). None of that is used by a local run.

``tfx`` here is a namespace with the same dotted names as ``tfx.v1``
(``tfx.dsl.Pipeline``, ``tfx.components.Trainer``, ``tfx.proto.SplitConfig``,
``tfx.orchestration.LocalDagRunner``, ...), each bound to the object
``tfx.v1`` itself re-exports from these modules, so code reads as TFX's
documentation writes it (``tests/components/test_tfx_api.py`` checks every
name against ``tfx.v1``). The Kubeflow runner keeps ``tfx.v1``: it needs the
orchestration extensions.
"""
from types import ModuleType, SimpleNamespace
from typing import Any, Dict, Iterable

import tfx.components as _components
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen as _ImportSchemaGen
from tfx.dsl.component.experimental import annotations as _annotations
from tfx.dsl.component.experimental import decorators as _decorators
from tfx.dsl.components.common import resolver as _resolver
from tfx.dsl.input_resolution.strategies import latest_artifact_strategy as _latest_artifact
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy as _latest_blessed
from tfx.dsl.input_resolution.strategies import span_range_strategy as _span_range
from tfx.dsl.io import fileio as _fileio
from tfx.orchestration import metadata as _metadata
from tfx.orchestration import pipeline as _pipeline
from tfx.orchestration.local import local_dag_runner as _local_dag_runner
from tfx.proto import (
    evaluator_pb2,
    example_gen_pb2,
    infra_validator_pb2,
    pusher_pb2,
    range_config_pb2,
    trainer_pb2,
    transform_pb2,
    tuner_pb2,
)
from tfx.types import artifact as _artifact
from tfx.types import channel as _channel
from tfx.types import standard_artifacts as _standard_artifacts

_PROTO_MODULES = (evaluator_pb2, example_gen_pb2, infra_validator_pb2, pusher_pb2, range_config_pb2,
                  trainer_pb2, transform_pb2, tuner_pb2)


def _public_classes(modules: Iterable[ModuleType]) -> Dict[str, type]:
    """Every message and enum class the protobuf modules define, by name (as ``tfx.v1.proto``)."""
    out: Dict[str, type] = {}
    for module in modules:
        for name in module.DESCRIPTOR.message_types_by_name:
            out[name] = getattr(module, name)
        for name in module.DESCRIPTOR.enum_types_by_name:
            out[name] = getattr(module, name)
    return out


def _by_name(*objects: Any, **more: Any) -> SimpleNamespace:
    """A namespace holding each object under its own ``__name__`` (and ``more`` as given)."""
    return SimpleNamespace(**{o.__name__: o for o in objects}, **more)


tfx = SimpleNamespace(
    # tfx.components' component classes, and ImportSchemaGen, which only tfx.v1 re-exports.
    components=SimpleNamespace(**{name: value for name, value in vars(_components).items()
                                  if isinstance(value, type)}, ImportSchemaGen=_ImportSchemaGen),
    dsl=_by_name(
        _pipeline.Pipeline, _resolver.Resolver, _channel.Channel, _artifact.Artifact,
        components=_by_name(_annotations.InputArtifact, _annotations.OutputArtifact, _annotations.Parameter,
                            _annotations.BeamComponentParameter, _decorators.component),
        experimental=_by_name(_latest_artifact.LatestArtifactStrategy,
                              _latest_blessed.LatestBlessedModelStrategy, _span_range.SpanRangeStrategy),
        io=SimpleNamespace(fileio=_fileio)),
    orchestration=_by_name(
        _local_dag_runner.LocalDagRunner,
        metadata=_by_name(_metadata.sqlite_metadata_connection_config)),
    proto=SimpleNamespace(**_public_classes(_PROTO_MODULES)),
    types=SimpleNamespace(standard_artifacts=_standard_artifacts),
)
