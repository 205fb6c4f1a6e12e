"""Local runner: the pipeline on Beam's DirectRunner with SQLite ML Metadata.

Chooses only paths, the metadata store and Beam args; the DAG is
``create_pipeline``. Everything a run writes lives under
``<run_dir>/<dataset>/``: pipeline_root/ (artifacts), metadata.db, logs/.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from common.config import PipelineConfig
from components.tfx_api import tfx
from pipeline.pipeline import create_pipeline
from pipeline.results import has_live_artifact
from pipeline.run_paths import local_paths
from pipeline.span_backfill import backfill

NO_EARLIER_TUNING = "no earlier tuning result: training with the trainer section's hyperparameters"


def local_beam_args(cfg: PipelineConfig) -> List[str]:
    """DirectRunner with the config's running mode and workers (in_memory is fastest for
    data that fits one machine), as flags only where they differ from Beam's defaults.

    Why not always spell them out: a TFX Beam executor given any Beam argument but no
    staging one (``--extra_packages``, ``--setup_file``, a container image) copies TFX's
    installed tree and builds an sdist of it for remote workers
    (``tfx.utils.dependency_utils.make_beam_dependency_flags``): about 1.5 s in each Beam
    component here. DirectRunner never ships it (in_memory runs in this process,
    multi_processing starts this same interpreter), so the default settings pass nothing."""
    beam_defaults = PipelineOptions([]).view_as(DirectOptions)
    settings = {"direct_running_mode": cfg.beam.direct_running_mode,
                "direct_num_workers": cfg.beam.direct_num_workers}
    return [f"--{name}={value}" for name, value in settings.items()
            if value != getattr(beam_defaults, name)]


def build_local_pipeline(cfg: PipelineConfig, tune: Optional[bool] = None) -> tfx.dsl.Pipeline:
    paths = local_paths(cfg)
    return create_pipeline(
        cfg, pipeline_root=paths.pipeline_root,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            paths.metadata),
        beam_pipeline_args=local_beam_args(cfg), tune=tune)


def with_reusable_hyperparameters(cfg: PipelineConfig, tune: Optional[bool] = None,
                                  say: Callable[[str], None] = print) -> PipelineConfig:
    """``cfg``, without ``tuner.reuse_last`` when this run directory's metadata holds
    no tuning result to reuse (a fresh directory, or one only ever run without tuning).

    The resolver for the last best hyperparameters would find nothing there: TFX
    then logs an ``InputResolutionError`` with its traceback, and the Trainer goes
    on with the trainer section's values anyway. Deciding before the DAG is built
    gives the same training and one line saying so.
    """
    tune = cfg.tuner.enabled if tune is None else tune
    if tune or not cfg.tuner.reuse_last or has_live_artifact(
            local_paths(cfg).metadata, cfg.pipeline_name, tfx.types.standard_artifacts.HyperParameters.TYPE_NAME):
        return cfg
    say(f"  {NO_EARLIER_TUNING}")
    return dataclasses.replace(cfg, tuner=dataclasses.replace(cfg.tuner, reuse_last=False))


def run_local(cfg: PipelineConfig, tune: Optional[bool] = None, say: Callable[[str], None] = print) -> None:
    """Runs the whole DAG; raises on the first failed component."""
    cfg = with_reusable_hyperparameters(cfg, tune, say)
    if cfg.data.spans.pattern:  # the window's older spans are ingested first
        paths = local_paths(cfg)
        backfill(cfg, paths.pipeline_root, paths.metadata, local_beam_args(cfg))
    tfx.orchestration.LocalDagRunner().run(build_local_pipeline(cfg, tune))
