"""The production loop's figures (issue 16): the loop on against a model frozen after its first training.

Runs the loop (``loop.runner``, the full plan of ``make loop`` unless ``--quick``), then
replays every replayed quarter's logged rows through the first pushed version, the one a
loop-less deployment would still serve (``monitoring.replay.scores``, the differential
test's own replay: the logged tf.Examples into the version's tf.Example signature), and
scores both against the feedback labels (``monitoring.labelled.row_truths``). Prints:

* accuracy per quarter: what users got with the loop, and what the frozen model would
  have answered on the same rows;
* the number of retrainings;
* the time from the first alert to the first promoted model (loop wall clock);
* the broken candidate's share of users' requests (and rows) before its rollback.

    PYTHONPATH=. .venv/bin/python bench/loop_bench.py [--quick] [--work-dir DIR]
"""
import argparse
import os
import time

# ruff: noqa: E402 (the environment is set before the imports that load TensorFlow)
from common.tf_environment import set_defaults

set_defaults()

import numpy as np

from common.paths import REPO_ROOT, resolve_path
from common.process_exit import exit_now
from loop.plan import FULL, QUICK
from loop.runner import Loop
from monitoring import locations
from monitoring.differential import optional_truths, predicted_classes
from monitoring.labelled import row_truths
from monitoring.reference import logged_columns
from monitoring.replay import load_version, scores
from monitoring.served import read_span
from serving.servable import ServedModel
from serving.versions import complete_versions


def frozen_accuracy(cfg, model: ServedModel, span: int) -> float:
    """Accuracy of the loaded ``model`` on the labelled logged rows of request-log span ``span``."""
    log_dir = locations.request_log_dir(cfg)
    served = read_span(log_dir, span, cfg.serving.model_name, logged_columns(cfg), examples=True)
    truths = optional_truths(row_truths(cfg, log_dir, served))
    predicted = predicted_classes(scores(model, served.examples), cfg.num_classes)
    labelled = truths >= 0
    return float(np.mean(predicted[labelled] == truths[labelled])) if labelled.any() else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work-dir", default="")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    work_dir = args.work_dir or resolve_path(os.path.join("runs", f"loop-bench-{time.strftime('%Y%m%d-%H%M%S')}"))
    loop = Loop(args.config, plan, work_dir)
    result = loop.run()
    cfg = loop.cfg
    print(result.timeline.table())
    print(f"\n{'quarter':>7} {'rows':>5} {'loop on':>8} {'frozen v1':>9}  note")
    frozen_model = load_version(cfg, complete_versions(cfg.push_dir)[0])
    try:
        for record in result.timeline.records:
            frozen = frozen_accuracy(cfg, frozen_model, record.log_span)
            note = "upstream fault" if record.quarter == plan.fault_at else (
                "broken candidate canaried" if record.quarter == plan.broken_at else "")
            print(f"{record.quarter:>7} {record.traffic.rows:>5} {record.traffic.accuracy:>8.3f} "
                  f"{frozen:>9.3f}  {note}")
    finally:
        frozen_model.close()
    print(f"\nretrainings: {result.retrainings}")
    alerted = [r.checked_at for r in result.timeline.records if r.alerts and r.checked_at]
    promoted = [r.canary_done_at for r in result.timeline.records
                if r.canary is not None and r.canary.action == "promote" and r.canary_done_at]
    if alerted and promoted and promoted[0] > alerted[0]:
        print(f"time from the first alert to a promoted model: {promoted[0] - alerted[0]:.0f} s")
    else:
        print("time from the first alert to a promoted model: no promotion after an alert")
    broken = next((r for r in result.timeline.records if r.quarter == plan.broken_at), None)
    if broken is not None and broken.canary is not None:
        print(f"broken candidate: {broken.canary.verdict.status} -> {broken.canary.action}; answered "
              f"{broken.broken_share():.1%} of users' requests during its canary "
              f"({broken.canary_rows()} of {sum(broken.versions.values())} rows of quarter {broken.quarter})")
    print(f"loop time: {result.timeline.seconds:.0f} s; report {result.report}")
    return 0


if __name__ == "__main__":
    exit_now(main())
