"""Crash safety: a taxi run SIGKILLed in the Trainer, then in the Pusher, then rerun.

Run A's served version stays byte for byte the same through both kills and ML
Metadata opens after each. The run killed in the Trainer adds nothing to the
push directory. The run killed in the Pusher adds nothing either, unless the
kill lands after the Pusher's rename (the copy takes milliseconds: on an idle
machine it often does); then the new version is whole, and the rerun records
that same version instead of pushing a second copy. (``bench/kill_rerun.py``
kills every component and compares the rerun with an uninterrupted run.)
"""
import os
import re

import pytest

from components.pusher import PUSH_COMPLETE_FILE
from pipeline.results import collect
from pipeline.run_paths import local_paths
from serving.versions import is_complete
from testing import kill_rerun
from tests.conftest import TAXI_CONFIG
from tests.e2e.conftest import config_for, small_overrides, write_sample

pytestmark = pytest.mark.e2e

PROGRESS_LINE = re.compile(r"^  \S+ +(done|cached|skipped) +\d+\.\ds$")
# Run B trains longer than run A: ExampleGen and Transform stay cached, so the killed
# runs are cut short cheaply; B is pushed whatever its AUC against A's model.
RUN_B = ["trainer.train_steps=150"]


def _command(root, data_dir, *extra):
    return kill_rerun.run_command(TAXI_CONFIG, small_overrides(root, data_dir) + kill_rerun.FAST_TAXI
                                  + list(extra))


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """Run A has pushed a model: (root, data dir, config of run B, run log)."""
    root = str(tmp_path_factory.mktemp("crash"))
    data_dir = write_sample(os.path.join(root, "data"))
    log = os.path.join(root, "runs.log")
    assert kill_rerun.run_to_end(_command(root, data_dir), log) == 0, f"run A failed: see {log}"
    return root, data_dir, config_for(root, data_dir, *kill_rerun.FAST_TAXI, *RUN_B), log


@pytest.mark.parametrize("node", ["Trainer", "Pusher"])
def test_a_run_killed_in_a_component_leaves_the_served_model_and_metadata_intact(served_run, node):
    root, data_dir, cfg, log = served_run
    paths = local_paths(cfg)
    check = kill_rerun.kill_in(node, _command(root, data_dir, *RUN_B), paths.pipeline_root, paths.metadata,
                               cfg.pipeline_name, cfg.push_dir, log)
    assert check.kill.killed, f"run B ended (exit {check.kill.exit_code}) before {node} started: see {log}"
    assert check.states, f"ML Metadata holds no execution of {node}"
    assert check.states[-1] != "COMPLETE", f"the kill came after {node} finished: {check.states}"
    assert check.previous_untouched, f"the run killed in {node} changed a served version in {cfg.push_dir}"
    if node != "Pusher":
        assert not check.published, f"the run killed in {node} pushed {check.published}"
    for version in check.published:
        assert is_complete(os.path.join(cfg.push_dir, version)), f"a partial version {version} is visible"


def test_the_rerun_after_the_kills_completes_and_pushes(served_run):
    root, data_dir, cfg, log = served_run
    before = kill_rerun.served_digest(cfg.push_dir)
    logged = os.path.getsize(log)
    assert kill_rerun.run_to_end(_command(root, data_dir, *RUN_B), log) == 0, f"the rerun failed: see {log}"
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(logged)
        output = f.read()
    # A successful run ends without tracebacks, TF's teardown ones included (common.process_exit).
    assert "Traceback" not in output and "Exception ignored" not in output, output[-3000:]
    # While the DAG runs the terminal gets one line per component; what the libraries print
    # goes to the run's log (pipeline.progress.library_output_to).
    during = output[output.index("  runs because: "):output.index("\n  total ")].splitlines()[1:]
    assert during and all(PROGRESS_LINE.match(line) for line in during), during
    result = collect(local_paths(cfg).metadata, cfg.pipeline_name)
    assert result.model_blessed and result.infra_blessed and result.pushed
    assert os.path.isfile(os.path.join(result.pushed_to, PUSH_COMPLETE_FILE))
    after = kill_rerun.served_digest(cfg.push_dir)
    assert {k: v for k, v in after.items() if k in before} == before  # earlier versions untouched
    # Run A's version and run B's: a version the killed Pusher published is the one recorded now.
    versions = kill_rerun.versions_of(after)
    assert versions == kill_rerun.versions_of(before) | {os.path.basename(result.pushed_to)}
    assert len(versions) == 2, f"a second copy of run B's model: {sorted(versions)}"
