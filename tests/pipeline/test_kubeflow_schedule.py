"""kubeflow.schedule: the recurring run and the monitoring CronJob, rendered and checked.

The CronJob goes through the same Kubernetes-schema check as the serving
manifests; its shell runs here under /bin/sh with a stand-in ``python`` on PATH
that records its arguments and exits as ``monitoring check``/``decide`` would,
so the branch taken on each exit status is the script's own.
"""
import os
import stat
import subprocess

import pytest
import yaml

from common.config import ConfigError
from common.loader import load_config
from common.paths import REPO_ROOT
from kubeflow import runner, schedule, submit
from serving.k8s import validate

SPANS_CONFIG = os.path.join(REPO_ROOT, "configs", "taxi-spans.yaml")
SCHEDULED = ["kubeflow.schedule=0 6 1 */3 *", "kubeflow.monitoring_schedule=30 * * * *",
             "kubeflow.host=https://kfp.example/pipeline", "kubeflow.state_claim=taxi-state"]


def _config(*overrides):
    return load_config(SPANS_CONFIG, list(overrides), require_data=False)


def test_cronjob_is_a_valid_kubernetes_cronjob_on_the_state_claim():
    cfg = _config(*SCHEDULED)
    cronjob = schedule.monitoring_cronjob(cfg)
    validate.check(cronjob)  # the client's OpenAPI model: unknown, mistyped or missing fields fail
    spec = cronjob["spec"]
    assert spec["schedule"] == "30 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == cfg.kubeflow.image
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "taxi-state"
    assert container["volumeMounts"][0]["mountPath"] == runner.image_path(cfg.run_dir)
    assert "--config /pipeline/configs/taxi-spans.yaml" in container["command"][-1]
    # never selected by the TF Serving Service
    assert cronjob["metadata"]["labels"]["app.kubernetes.io/name"] != "tf-serving"


def test_a_cronjob_with_a_typo_fails_the_schema_check():
    cronjob = schedule.monitoring_cronjob(_config(*SCHEDULED))
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(validate.ManifestError, match="CronJob taxi-spans-monitoring: not a valid V1CronJob"):
        validate.check(cronjob)


def _fake_python(tmp_path, check, decide):
    """``python`` that appends its argv to calls.txt and exits like check/decide would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "python"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {tmp_path}/calls.txt
case "$3" in check) exit {check};; decide) exit {decide};; esac
exit 0
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


@pytest.mark.parametrize("check, decide, exit_code, steps", [
    (0, 0, 0, ["check", "decide"]),
    (1, 0, 0, ["check", "decide"]),                        # alerts raised: still decides
    (1, 1, 0, ["check", "decide", "kubeflow.runner", "kubeflow.submit"]),  # retrain: compile, submit
    (2, 1, 2, ["check"]),                                  # check failed: no decision
    (0, 2, 2, ["check", "decide"]),                        # decide failed: nothing submitted
])
def test_cronjob_script_submits_a_run_only_when_decide_says_retrain(tmp_path, check, decide, exit_code, steps):
    cfg = _config(*SCHEDULED)
    script = schedule.cronjob_script(cfg, ["trainer.train_steps=10"])
    env = {**os.environ, "PATH": _fake_python(tmp_path, check, decide) + os.pathsep + os.environ["PATH"]}
    done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == exit_code, done.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert [c.split()[1] if c.split()[1] != "monitoring" else c.split()[2] for c in calls] == steps
    assert all("--set trainer.train_steps=10" in c for c in calls if "kubeflow.submit" not in c)
    if "kubeflow.submit" in steps:
        assert f"kubeflow.output_file={schedule.SPEC_IN_POD}" in calls[2]
        assert calls[3].endswith(f"--spec {schedule.SPEC_IN_POD} --host https://kfp.example/pipeline")


def test_recurring_run_binds_to_kfp_and_uses_its_cron():
    cfg = _config(*SCHEDULED)
    definition = schedule.recurring_run(cfg)
    schedule.check_recurring_run(definition)
    assert definition["cron_expression"] == "0 0 6 1 */3 *"  # KFP's seconds field first
    assert definition["params"] == {"range_config": ""} and definition["max_concurrency"] == 1
    with pytest.raises(ValueError, match="not arguments of kfp.Client.create_recurring_run"):
        schedule.check_recurring_run({**definition, "cron": "x"})
    with pytest.raises(ValueError, match="6-field cron"):
        schedule.check_recurring_run({**definition, "cron_expression": "0 6 1 */3 *"})


def test_cli_writes_what_the_config_schedules(tmp_path, capsys):
    args = ["--config", SPANS_CONFIG, "--out", str(tmp_path)] + [a for o in SCHEDULED for a in ("--set", o)]
    assert schedule.main(args) == 0
    written = capsys.readouterr().out.split()
    assert [os.path.basename(p) for p in written] == [schedule.RECURRING_RUN_FILE, schedule.CRONJOB_FILE]
    with open(written[1]) as f:
        (cronjob,) = list(yaml.safe_load_all(f))
    validate.check(cronjob)
    assert schedule.main(["--config", SPANS_CONFIG, "--out", str(tmp_path)]) == 2  # nothing scheduled
    assert "expected at least one 5-field cron" in capsys.readouterr().err


@pytest.mark.parametrize("overrides, key, expected", [
    (["kubeflow.schedule=every day"], "kubeflow.schedule", "a 5-field cron"),
    (["kubeflow.monitoring_schedule=0 * * *"], "kubeflow.monitoring_schedule", "a 5-field cron"),
    (["kubeflow.monitoring_schedule=0 * * * *"], "kubeflow.host", "the KFP API endpoint"),
    (["kubeflow.monitoring_schedule=0 * * * *", "kubeflow.host=h"], "kubeflow.state_claim",
     "the PersistentVolumeClaim"),
])
def test_schedule_config_errors_name_the_key(overrides, key, expected):
    with pytest.raises(ConfigError) as err:
        _config(*overrides)
    assert f"'{key}'" in str(err.value) and expected in str(err.value)


def test_submit_creates_the_recurring_run(tmp_path, monkeypatch):
    """The definition reaches kfp.Client.create_recurring_run with the spec's package."""
    cfg = _config(*SCHEDULED)
    definition_path = schedule.write(cfg, str(tmp_path))[0]
    spec = tmp_path / "spec.json"
    spec.write_text('{"pipelineSpec": {"pipelineInfo": {"name": "taxi-spans-pipeline"}}, '
                    '"runtimeConfig": {"parameters": {"range_config": {"stringValue": ""}}}}')
    calls = {}

    class Client:
        def __init__(self, host, namespace):
            calls["host"] = host

        def create_experiment(self, name, namespace=None):
            calls["experiment"] = name
            return type("Experiment", (), {"experiment_id": "e-1"})()

        def create_recurring_run(self, **kwargs):
            calls["kwargs"] = kwargs
            return type("RecurringRun", (), {"recurring_run_id": "r-1"})()

    import kfp
    monkeypatch.setattr(kfp, "Client", Client)
    assert submit.main(["--spec", str(spec), "--host", "https://kfp.example", "--recurring", definition_path]) == 0
    kwargs = calls["kwargs"]
    assert calls["experiment"] == cfg.pipeline_name and kwargs["experiment_id"] == "e-1"
    assert kwargs["cron_expression"] == "0 0 6 1 */3 *" and kwargs["params"] == {"range_config": ""}
    assert os.path.basename(kwargs["pipeline_package_path"]) == "pipeline.yaml"


def test_recurring_span_on_the_command_line_wins_over_the_files_params(tmp_path):
    """The schedule file carries range_config "" (the newest span); ``--span`` must replace it,
    and a parameter the file sets that the command line does not stays the file's."""
    cfg = _config(*SCHEDULED)
    definition_path = schedule.write(cfg, str(tmp_path))[0]
    job = {"pipelineSpec": {"pipelineInfo": {"name": "taxi-spans-pipeline"}},
           "runtimeConfig": {"parameters": {"range_config": {"stringValue": ""}}}}
    args = submit.parse_args(["--spec", "unused.json", "--host", "https://kfp.example",
                              "--recurring", definition_path, "--span", "7"])
    params = submit.recurring_arguments(args, job)["params"]
    assert params["range_config"] == submit.span_range_json(7) != ""
    args = submit.parse_args(["--spec", "unused.json", "--host", "https://kfp.example",
                              "--recurring", definition_path])
    assert submit.recurring_arguments(args, job)["params"] == {"range_config": ""}
