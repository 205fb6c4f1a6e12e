"""A gateway process started ahead (serving/prestart.py, serving/warm_start.py) serves as a
cold ``python -m serving start`` does, is taken once, and never outlives its caller."""
import io
import json
import os
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from serving import prestart
from serving.server import launch_model
from serving.warm_start import WarmStartError, read_arguments
from testing.tiny_model import INSTANCE, push_version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def base_path(tmp_path, tiny_models):
    base = str(tmp_path / "taxi")
    push_version(base, 1, tiny_models[1])
    return base


@pytest.fixture(autouse=True)
def no_leftover_warm_process():
    yield
    prestart.stop()


def predict(server):
    body = json.dumps({"instances": [INSTANCE]}).encode()
    request = urllib.request.Request(f"{server.model_url('taxi')}:predict", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def test_launch_takes_the_warm_process_it_serves_and_is_ready_sooner(base_path):
    """Started ahead and given time to import, it listens sooner than a new process
    (what the pipeline's InfraValidator gains), and only one launch takes it."""
    warm = prestart.start()
    assert prestart.start() is warm  # one at a time
    _wait_until_idle(warm.process.pid)
    ready = {}
    for kind in ("warm", "cold"):
        started = time.monotonic()
        with launch_model(base_path, "taxi", "--no_request_log") as server:
            ready[kind] = time.monotonic() - started
            assert (server.process.pid == warm.process.pid) == (kind == "warm")
            assert len(predict(server)["predictions"]) == 1
        if kind == "warm":
            assert warm.process.returncode == 0  # SIGTERM: the gateway's clean exit
    assert ready["warm"] < ready["cold"], ready


def _wait_until_idle(pid, limit_s=180.0):
    """Until the process has used no CPU for a second: its imports are done, it waits on stdin."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + limit_s
    last = sum(process.cpu_times()[:2])
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = sum(process.cpu_times()[:2])  # user + system
        if now == last:
            return
        last = now
    raise AssertionError(f"the warm process {pid} kept busy for {limit_s} s")


def test_an_explicit_environment_starts_cold_and_leaves_the_warm_process(base_path):
    warm = prestart.start()
    with launch_model(base_path, "taxi", "--no_request_log", env=dict(os.environ)) as server:
        assert server.process.pid != warm.process.pid
    assert warm.process.poll() is None
    prestart.stop()
    assert warm.process.returncode is not None


def test_a_warm_process_that_died_is_replaced_by_a_cold_start(base_path):
    warm = prestart.start()
    warm.process.kill()
    warm.process.wait()
    with launch_model(base_path, "taxi", "--no_request_log") as server:
        assert server.process.pid != warm.process.pid
        assert len(predict(server)["predictions"]) == 1


def test_an_untaken_warm_process_ends_with_its_block():
    with prestart.started_early() as warm:
        assert warm.process.poll() is None
    assert warm.process.returncode is not None
    assert prestart.take(["--model_name", "taxi"]) is None  # nothing left to take
    with prestart.started_early(enabled=False) as nothing:
        assert nothing is None


def test_warm_start_refuses_a_line_that_is_not_a_list_of_strings():
    assert read_arguments(io.StringIO("")) is None
    assert read_arguments(io.StringIO('["--model_name", "taxi"]\n')) == ["--model_name", "taxi"]
    for line in ("--model_name taxi\n", '{"model_name": "taxi"}\n', '["--port", 0]\n'):
        with pytest.raises(WarmStartError, match="stdin: expected"):
            read_arguments(io.StringIO(line))
    done = subprocess.run([sys.executable, "-m", "serving.warm_start"], input="not json\n",
                          capture_output=True, text=True, env=prestart.child_env(), cwd=REPO,
                          timeout=300)
    assert done.returncode == 2
    assert "stdin: expected one JSON list of argument strings" in done.stderr


_CALLER = """
import os, sys, time
from serving import prestart
from serving.server import launch_model
if sys.argv[2] == "warm":
    prestart.start()
    env = None
else:
    env = dict(os.environ)
with launch_model(sys.argv[1], "taxi", "--no_request_log", env=env) as server:
    print(server.process.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["warm", "cold"])
def test_a_gateway_does_not_outlive_a_caller_killed_with_sigkill(base_path, kind):
    """SIGKILL runs no clean-up in the caller (a pipeline killed during its InfraValidator):
    the gateway sees its stdin close and stops as on SIGTERM."""
    caller = subprocess.Popen([sys.executable, "-c", _CALLER, base_path, kind], stdout=subprocess.PIPE,
                              text=True, env=prestart.child_env(), cwd=REPO)
    try:
        gateway = psutil.Process(int(caller.stdout.readline()))
        assert gateway.is_running()
        caller.kill()
        caller.wait()
        gateway.wait(timeout=60)  # raises psutil.TimeoutExpired if it outlives its caller
        assert not gateway.is_running()
    finally:
        caller.kill()
        caller.stdout.close()
