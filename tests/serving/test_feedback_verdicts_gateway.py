"""Statement verdicts end to end: extension/background.js's own ``sendFeedback`` (run in Node,
browser APIs stubbed, the network real) posts a reader's answer to a real gateway process,
which answers 2xx, stores the record durably and counts it on /metrics."""
import json
import os
import subprocess

import pytest

from serving.client import Client
from serving.feedback.verdicts import read_verdicts
from serving.server import launch
from testing.tiny_model import gateway_args, gateway_env, push_version
from tests.conftest import REPO, TAXI_CONFIG

pytestmark = pytest.mark.integration

MODEL = "taxi"
SENDER = os.path.join(REPO, "tests", "serving", "extension_feedback.mjs")
BACKGROUND = os.path.join(REPO, "extension", "background.js")
STATEMENT = "Unemployment fell by 2 percent in Ohio last year."


def send_like_the_extension(tmp_path, gateway_url, item):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"gateway_url": gateway_url + "/", "model": MODEL,
                                "model_version": "1", "item": item}))
    done = subprocess.run(["node", SENDER, BACKGROUND, str(spec)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_extensions_feedback_is_accepted_stored_and_counted(tmp_path, tiny_models):
    root = str(tmp_path / "root")
    push_version(os.path.join(root, "serving", MODEL), 1, tiny_models[1])
    item = {"statement": STATEMENT, "answer": "wrong",
            "lean": {"side": "true", "probability": 0.68, "sure": True, "text": "leans true 68 %"}}
    with launch(gateway_args(TAXI_CONFIG, root), env=gateway_env()) as server, \
            Client(server.base_url) as client:
        sent = send_like_the_extension(tmp_path, server.base_url, item)
        assert sent["result"] == {"sent": True, "status": 200,
                                  "url": f"{server.base_url}/v1/models/{MODEL}/feedback"}
        assert sent["request"]["headers"] == {"content-type": "application/json"}
        # stored (fsynced) before the 200, by the gateway process: read back from disk now
        assert [(r.statement, r.model, r.model_version, r.lean, r.probability, r.answer, r.reader_side)
                for r in read_verdicts(os.path.join(root, "request_log"))] == [
            (STATEMENT, MODEL, "1", "true", 0.68, "wrong", "false")]
        status, metrics, _ = client.request("GET", "/metrics")
        assert status == 200
        assert f'gateway_feedback_verdicts_total{{model="{MODEL}",answer="wrong"}} 1' in metrics
        status, answer, _ = client.request("POST", f"/v1/models/{MODEL}/feedback",
                                           dict(json.loads(sent["request"]["body"]), probability=1.5))
        assert status == 400 and answer["error"].startswith("probability: expected a number in [0, 1]")
    assert len(read_verdicts(os.path.join(root, "request_log"))) == 1
