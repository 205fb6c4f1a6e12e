"""Command line: ``python -m pipeline run|schema-candidate --config configs/<name>.yaml``.

Examples:
  python -m pipeline run --config configs/taxi.yaml
  python -m pipeline report --config configs/liar.yaml   # summary + report.html of the last run
  python -m pipeline run --config configs/taxi.yaml --set trainer.train_steps=200 --no-tune
  python -m pipeline run --config configs/taxi.yaml --force   # run even when nothing changed
  python -m pipeline schema-candidate --config configs/taxi.yaml
  python -m pipeline spans --config configs/taxi.yaml --out data/taxi_spans   # quarterly spans
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
import traceback
import warnings

from common.tf_environment import set_defaults  # noqa: E402 (first: before anything imports TF)

set_defaults()
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from common.cli_args import add_config_arguments  # noqa: E402
from common.config import ConfigError  # noqa: E402
from common.loader import load_config  # noqa: E402
from common.process_exit import exit_now  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole DAG locally on Beam")
    add_config_arguments(run)
    run.add_argument("--force", action="store_true",
                     help="run the DAG even when nothing changed since the last successful run")
    add_config_arguments(sub.add_parser("schema-candidate", help="infer a schema with SchemaGen for review"),
                         tune_flag=False)
    add_config_arguments(sub.add_parser("report", help="summary and HTML report of the last run"),
                         tune_flag=False)
    spans = sub.add_parser("spans", help="cut the config's CSV data into quarterly spans (span-<N>/data.csv)")
    add_config_arguments(spans, tune_flag=False)
    spans.add_argument("--out", required=True, help="a new directory for the spans, e.g. data/taxi_spans")
    spans.add_argument("--column", help="epoch-seconds column to cut by (default: the config's timestamp feature)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if args.command == "schema-candidate":
        from pipeline.schema_candidate import write_schema_candidate
        print(f"schema candidate written to {write_schema_candidate(cfg)}; review it against {cfg.schema_path}")
        return 0
    if args.command == "report":
        return _report(cfg)
    if args.command == "spans":
        from pipeline.span_cutter import SpanCutError, cut_config_data
        try:
            print(cut_config_data(cfg, args.out, args.column))
        except SpanCutError as e:
            print(f"spans: {e}", file=sys.stderr)
            return 2
        return 0
    return _run(cfg, tune=args.tune, force=args.force)


def _report(cfg) -> int:
    """Prints the summary of the newest run and writes ``runs/<name>/report.html``."""
    from pipeline.run_paths import config_arg, local_paths

    paths = local_paths(cfg)
    if not os.path.isfile(paths.metadata):
        print(f"no run of {cfg.name} yet: {paths.metadata} does not exist "
              f"(python -m pipeline run --config {config_arg(cfg)})", file=sys.stderr)
        return 1
    _write_report(cfg)
    return 0


def _write_report(cfg) -> str:
    """Prints the newest run's summary and the report's path; returns the summary."""
    from pipeline import report
    from pipeline.html_report import write_report
    from pipeline.results import collect
    from pipeline.run_paths import local_paths

    paths = local_paths(cfg)
    result = collect(paths.metadata, cfg.pipeline_name)
    summary = report.summary_text(cfg, result)
    print(summary)
    print(f"Report: {write_report(cfg, result, paths.report, summary)}")
    return summary


def _run(cfg, tune, force=False) -> int:
    # Decided before TF, TFX or Beam is imported: a no-op rerun answers in about a second.
    from pipeline import noop_rerun
    from pipeline.run_paths import local_paths

    paths = local_paths(cfg)
    decision = noop_rerun.decide(cfg, tune, force)
    if decision.nothing_to_do:
        print(noop_rerun.nothing_to_do_text(cfg, decision.record))
        return 0
    noop_rerun.forget(paths)
    # The InfraValidator's gateway imports TensorFlow while this process imports TFX.
    from serving import prestart
    with prestart.started_early(enabled=cfg.serving.infra_validation == "local"):
        return _execute(cfg, tune, paths, decision)


def _execute(cfg, tune, paths, decision) -> int:
    """The whole DAG; the summary after it; the no-op record only when all of it succeeded."""
    from common.frozen_imports import frozen_imports

    with frozen_imports():  # TF, TFX and Beam: common.frozen_imports says why
        from components.anomalies_gate import DataAnomaliesError
        from pipeline import noop_rerun, progress
        from pipeline.local_runner import run_local

    os.makedirs(os.path.dirname(paths.log_file), exist_ok=True)
    print(f"pipeline {cfg.name}: data {cfg.data_path}\n  run directory {paths.root} (log: {paths.log_file})")
    print(f"  runs because: {'; '.join(decision.changes)}")
    handler = progress.attach(paths.log_file)
    start = time.time()
    try:
        with progress.library_output_to(paths.log_file) as terminal:
            run_local(cfg, tune, say=lambda line: print(line, file=terminal))
    except KeyboardInterrupt:
        handler.fail()
        print(f"\nRUN INTERRUPTED after {time.time() - start:.1f}s (log: {paths.log_file})", file=sys.stderr)
        return 130
    except Exception as e:  # the orchestrator re-raises the failing executor's error
        handler.fail()
        print(f"\nRUN FAILED after {time.time() - start:.1f}s: {e}", file=sys.stderr)
        if not isinstance(e, (DataAnomaliesError, ConfigError)):
            # Not a situation the pipeline expects (bad data, bad config): a bug or
            # the environment. The traceback goes to the log, not the terminal.
            progress.write_to_log_file(traceback.format_exc())
            print(f"({type(e).__name__}; traceback in {paths.log_file})", file=sys.stderr)
        print("Nothing was pushed; the previously pushed model is still served.", file=sys.stderr)
        return 1
    seconds = time.time() - start
    print(f"  {'total':<34} {'':<8} {seconds:7.1f}s\n")
    summary = _write_report(cfg)
    try:
        noop_rerun.record_success(cfg, decision.fingerprint, summary, seconds)
    except (OSError, sqlite3.Error, LookupError) as e:  # the run stands; the next one executes
        print(f"(no-op record not written: {e}; the next run executes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # The run's files are closed and ML Metadata committed when main returns.
    exit_now(main())
