"""The local runner: --no-tune reuses the last tuning result only when this run directory's ML Metadata
has one; the DirectRunner settings reach Beam without TFX packaging itself for remote workers."""
import dataclasses
import os

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.local_runner import (
    NO_EARLIER_TUNING,
    build_local_pipeline,
    local_beam_args,
    with_reusable_hyperparameters,
)
from pipeline.results import has_live_artifact
from pipeline.run_paths import local_paths

RESOLVER = "latest_hyperparameters_resolver"


@pytest.fixture
def cfg(taxi_config, tmp_path):
    return dataclasses.replace(taxi_config, run_dir=str(tmp_path / "runs"))


def _record_hyperparameters(cfg, state=metadata_store_pb2.Artifact.LIVE):
    """A HyperParameters artifact of this pipeline in its SQLite store, as a Tuner leaves it."""
    path = local_paths(cfg).metadata
    os.makedirs(os.path.dirname(path), exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="HyperParameters"))
    context_type_id = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type_id,
                                                                  name=cfg.pipeline_name)])
    [artifact_id] = store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="/h", state=state)])
    store.put_attributions_and_associations(
        [metadata_store_pb2.Attribution(artifact_id=artifact_id, context_id=context_id)], [])


def _node_ids(pipeline):
    return {c.id for c in pipeline.components}


def test_a_fresh_run_directory_trains_with_the_trainer_section(cfg):
    said = []
    effective = with_reusable_hyperparameters(cfg, tune=False, say=said.append)
    assert said == [f"  {NO_EARLIER_TUNING}"]
    assert cfg.tuner.reuse_last and not effective.tuner.reuse_last
    assert dataclasses.replace(effective, tuner=cfg.tuner) == cfg  # nothing else changes
    pipeline = build_local_pipeline(effective, tune=False)
    assert RESOLVER not in _node_ids(pipeline) and "Tuner" not in _node_ids(pipeline)
    trainer = next(c for c in pipeline.components if c.id == "Trainer")
    assert "hyperparameters" not in trainer.inputs


def test_an_earlier_tuning_result_is_reused(cfg):
    _record_hyperparameters(cfg)
    said = []
    assert with_reusable_hyperparameters(cfg, tune=False, say=said.append) is cfg and said == []
    assert RESOLVER in _node_ids(build_local_pipeline(cfg, tune=False))


def test_a_failed_tuners_output_is_not_a_result(cfg):
    _record_hyperparameters(cfg, state=metadata_store_pb2.Artifact.ABANDONED)
    assert not has_live_artifact(local_paths(cfg).metadata, cfg.pipeline_name, "HyperParameters")
    assert not with_reusable_hyperparameters(cfg, tune=False, say=lambda _: None).tuner.reuse_last


def test_tuning_or_no_reuse_asks_nothing(cfg):
    said = []
    assert with_reusable_hyperparameters(cfg, tune=True, say=said.append) is cfg
    no_reuse = dataclasses.replace(cfg, tuner=dataclasses.replace(cfg.tuner, reuse_last=False))
    assert with_reusable_hyperparameters(no_reuse, tune=False, say=said.append) is no_reuse
    assert said == [] and not os.path.exists(local_paths(cfg).metadata)


# -- Beam arguments ------------------------------------------------------------

def _direct_options(cfg):
    from apache_beam.options import pipeline_options as po
    from tfx.components.statistics_gen.executor import Executor as StatisticsGenExecutor

    context = StatisticsGenExecutor.Context(beam_pipeline_args=local_beam_args(cfg), tmp_dir="/tmp/")
    executor = StatisticsGenExecutor(context)
    pipeline = executor._make_beam_pipeline()
    direct = pipeline.options.view_as(po.DirectOptions)
    return pipeline, direct, executor._beam_pipeline_args


def test_the_default_settings_reach_beam_without_making_tfx_package_itself(cfg):
    from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner

    assert (cfg.beam.direct_running_mode, cfg.beam.direct_num_workers) == ("in_memory", 1)
    pipeline, direct, executor_args = _direct_options(cfg)
    assert isinstance(pipeline.runner, SwitchingDirectRunner)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("in_memory", 1)
    # TFX adds --extra_package=<an sdist of its own install> to any non-empty argument list
    assert not any(arg.startswith("--extra_package") for arg in executor_args)


@pytest.mark.parametrize("mode,workers", [("multi_processing", 2), ("multi_threading", 1), ("in_memory", 2)])
def test_other_direct_settings_reach_beam(cfg, mode, workers, monkeypatch):
    from tfx.utils import dependency_utils

    # the package TFX then builds is not what is tested here (1.5 s each)
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", lambda: "/tmp/tfx_ephemeral.tar.gz")
    changed = dataclasses.replace(cfg, beam=dataclasses.replace(
        cfg.beam, direct_running_mode=mode, direct_num_workers=workers))
    _, direct, _ = _direct_options(changed)
    assert (direct.direct_running_mode, direct.direct_num_workers) == (mode, workers)
