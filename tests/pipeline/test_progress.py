"""pipeline.progress: one line per component from the orchestrator's log."""
import io
import logging

from pipeline.progress import ProgressHandler


def test_progress_lines_from_orchestrator_log():
    out = io.StringIO()
    handler = ProgressHandler(out)
    logger = logging.getLogger("progress-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("Component %s is running.", "Transform")
    logger.info("Component %s is finished.", "Transform")
    logger.info("Component %s is running.", "Trainer")
    logger.info("A cached execution %d is used.", 7)
    logger.info("Component %s is finished.", "Trainer")
    logger.info("Component %s is running.", "Evaluator")
    handler.fail()
    assert handler.states == {"Transform": "done", "Trainer": "cached", "Evaluator": "FAILED"}
    assert out.getvalue().splitlines()[1].split()[:2] == ["Trainer", "cached"]
