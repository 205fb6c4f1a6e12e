"""The production loop on one machine: train, serve, monitor, decide, retrain, test, canary, promote.

``python -m loop --config configs/taxi-spans.yaml [--quick]`` (``make loop``) drives the
whole production loop on the taxi quarters by calling the other packages' own functions:
the pipeline (``pipeline.local_runner.run_local``), the gateway (``serving.server.launch``),
the monitoring check, decision, differential test and canary (``monitoring``), and the
feedback spans that make labelled served traffic training data (``pipeline.feedback_spans``).
It is the top floor: it imports every package and none imports it.
"""
