"""``python -m monitoring <command>``: the data-monitoring commands.

``calibrate``: thresholds for spans of ``--span-size`` rows at a false-alarm
``--budget``, from the config's accepted history, written as a candidate
schema plus a JSON sidecar (``monitoring.artifacts``).

``check``: one span of the request log (default: the newest closed one)
against the training history and the previous span, its model outputs,
feedback labels and the gateway's health (``monitoring.check``). Alerts go to
``alerts.jsonl``, ML Metadata and ``monitoring.prom``. Exit status: 0 no
alert, 1 alerts raised, 2 the check could not run.

``report``: the checks recorded so far as one static HTML page (``monitoring.report``).

``decide``: the retraining rule (``retraining`` config section) over the recorded
checks (``monitoring.retraining``, ``monitoring.decide``): every rule's value,
threshold and verdict, the proposed training window, the data-incident spans
kept out of it. Recorded in ML Metadata and ``decisions.jsonl``. Exit status: 0
no retraining, 1 retrain, 2 no decision could be made.

``diff``: a served span replayed through the stable and the candidate version
(``monitoring.replay``): flip rate, prediction differences, per-slice labelled
accuracy deltas against the ``differential`` thresholds, and the flipped rows.
Exit status: 0 every threshold held, 1 one failed, 2 the replay could not run.

``canary``: the automatic rollout (``monitoring.canary``): the candidate goes out as
a canary at ``rollout_analysis.canary_percent`` % (or as a shadow), is compared
with the stable version on live traffic once it answered
``rollout_analysis.min_requests``, then promoted or withdrawn; the verdict and its
reasons go to ML Metadata. Exit status: 0 promoted, 1 withdrawn, 2 could not run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

from common.cli_args import add_config_arguments
from common.loader import load_config
from common.paths import resolve_path
from monitoring.health import fetch_metrics
from monitoring.locations import report_path

# The commands import TFDV (and through it TensorFlow) when they run, not at start-up:
# `--help` answers at once.


def _calibrate(args: argparse.Namespace) -> int:
    import tensorflow_data_validation as tfdv

    from monitoring.artifacts import write_calibration
    from monitoring.calibration import calibrate, candidate_schema
    from monitoring.history import load_history, monitored_features

    config = load_config(args.config, args.overrides)
    schema = tfdv.load_schema_text(config.schema_path)
    features = monitored_features(config, schema)
    history = load_history(config, schema, features)
    started = time.perf_counter()
    calibration = calibrate(history, schema, features, args.span_size, args.budget,
                            draws=args.draws, seed=args.seed, comparators=args.comparators)
    out = args.out or resolve_path(os.path.join(config.run_dir, "monitoring", config.name,
                                                f"span_{args.span_size}"))
    paths = write_calibration(out, candidate_schema(schema, calibration), calibration,
                              config.schema_path)
    print(f"calibrated {len(features)} features of {len(history)} rows, spans of "
          f"{args.span_size}, {calibration.draws} draws in {time.perf_counter() - started:.0f} s")
    for path in paths:
        print(f"wrote {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from monitoring.check import check_span, record_check, summary

    config = load_config(args.config, args.overrides)
    if args.gateway_url:
        metrics, source = fetch_metrics(args.gateway_url), args.gateway_url
    elif args.metrics_file:
        with open(args.metrics_file, encoding="utf-8") as f:
            metrics, source = f.read(), args.metrics_file
    else:
        metrics, source = None, ""
    started = time.perf_counter()
    result = check_span(config, args.span, metrics, source)
    paths = record_check(config, result)
    print(summary(result, time.perf_counter() - started))
    for what, path in paths.items():
        print(f"wrote {what}: {path}")
    return 1 if result.alerts else 0


def _report(args: argparse.Namespace) -> int:
    from monitoring.report import write_report

    config = load_config(args.config, args.overrides)
    out = args.out or report_path(config)
    print(f"wrote {write_report(config, out, top=args.top)}")
    return 0


def _decide(args: argparse.Namespace) -> int:
    from monitoring.decide import decide_from_records, record_decision, summary

    config = load_config(args.config, args.overrides)
    decision = decide_from_records(config, args.span)
    paths = record_decision(config, decision)
    print(summary(decision))
    for what, path in paths.items():
        print(f"wrote {what}: {path}")
    return 1 if decision.retrain else 0


def _diff(args: argparse.Namespace) -> int:
    from monitoring.replay import replay_span, summary, write_replay

    config = load_config(args.config, args.overrides)
    replay = replay_span(config, args.span, args.stable, args.candidate)
    write_replay(config, replay)
    print(summary(replay, args.show))
    return 1 if replay.report.failures else 0


def _canary(args: argparse.Namespace) -> int:
    from monitoring.canary import Gateway, RolloutRefused, run, summary

    config = load_config(args.config, args.overrides)
    token = os.environ.get(config.serving.admin_token_env, "")
    if not token:
        raise ValueError(f"set ${config.serving.admin_token_env} to the gateway's admin token "
                         "(serving.admin_token_env)")
    gateway = Gateway(args.gateway_url, args.model or config.serving.model_name, token)
    try:
        result = run(config, gateway, args.version, shadow=args.shadow, percent=args.percent)
    except RolloutRefused as err:
        raise ValueError(str(err)) from None
    print(summary(result))
    return 0 if result.action == "promote" else 1


def _span_command(commands: argparse._SubParsersAction, name: str, help_text: str,
                  span_help: str) -> argparse.ArgumentParser:
    """A subcommand taking the config arguments and ``--span``."""
    parser = commands.add_parser(name, help=help_text)
    add_config_arguments(parser, tune_flag=False)
    parser.add_argument("--span", type=int, default=None, help=span_help)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    cal = commands.add_parser("calibrate", help="thresholds at a false-alarm budget")
    add_config_arguments(cal, tune_flag=False)
    cal.add_argument("--span-size", type=int, required=True,
                     help="rows of the spans the thresholds are for (the expected span size)")
    cal.add_argument("--budget", type=float, default=0.05,
                     help="false-alarm probability of one comparison of one span (default 0.05)")
    cal.add_argument("--draws", type=int, default=None,
                     help="null draws R (default: the fewest the budget split allows)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--comparators", nargs="+", choices=("skew", "drift"),
                     default=["skew", "drift"])
    cal.add_argument("--out", default="",
                     help="output directory (default <run_dir>/monitoring/<name>/span_<n>)")
    cal.set_defaults(run=_calibrate)

    check = _span_command(commands, "check", "check a span of served traffic; exit 1 on alerts",
                          "the request-log span to check (default: the newest closed span)")
    health = check.add_mutually_exclusive_group()
    health.add_argument("--gateway-url", default="",
                        help="read error rate and p99 latency from this gateway's /metrics")
    health.add_argument("--metrics-file", default="",
                        help="... or from a saved /metrics text")
    check.set_defaults(run=_check)

    report = commands.add_parser("report", help="the recorded checks as one HTML page")
    add_config_arguments(report, tune_flag=False)
    report.add_argument("--out", default="",
                        help="output file (default <run_dir>/<name>/monitoring.html)")
    report.add_argument("--top", type=int, default=4,
                        help="drifting features shown with both histograms (default 4)")
    report.set_defaults(run=_report)

    decide = _span_command(commands, "decide", "the retraining rule over the recorded checks; exit 1 = retrain",
                           "decide as of this checked span (default: the newest checked span)")
    decide.set_defaults(run=_decide)

    diff = _span_command(commands, "diff", "replay a served span through two versions; exit 1 on a failed threshold",
                         "the request-log span to replay (default: the newest closed span)")
    diff.add_argument("--stable", type=int, default=None,
                      help="the stable version (default: the version that answered most of the span)")
    diff.add_argument("--candidate", type=int, default=None,
                      help="the candidate version (default: the newest pushed version besides the stable)")
    diff.add_argument("--show", type=int, default=20, help="flipped rows printed (all are in the report)")
    diff.set_defaults(run=_diff)

    canary = commands.add_parser("canary", help="canary (or shadow) a candidate, then promote or withdraw "
                                                "it; exit 1 = withdrawn")
    add_config_arguments(canary, tune_flag=False)
    canary.add_argument("--gateway-url", required=True, help="the gateway (admin API and /metrics)")
    canary.add_argument("--version", type=int, default=None,
                        help="the candidate (default: the newest version on disk besides the stable)")
    canary.add_argument("--shadow", action="store_true",
                        help="shadow mode: the candidate answers every request, users never see it")
    canary.add_argument("--percent", type=float, default=None,
                        help="canary share (default rollout_analysis.canary_percent)")
    canary.add_argument("--model", default="", help="default: serving.model_name")
    canary.set_defaults(run=_canary)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, OSError) as err:  # ConfigError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
