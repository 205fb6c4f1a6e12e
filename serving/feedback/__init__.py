"""Feedback labels: ground truth for served predictions, joined into labelled data spans.

The loop: a client gets a prediction (the answer's ``X-Request-Id`` header
names it; the request log keeps its rows under that id), later learns the
true outcome and sends it back; ``python -m serving join`` turns a span of
the request log plus its labels into a labelled span that ExampleGen reads
like any training data.

* ``POST /v1/models/<m>/feedback`` (``serving.api.feedback``):
  ``{"request_id": ..., "label": ..., "row": 0}`` or ``{"feedback": [items]}``
* ``python -m serving feedback labels.csv --config ...``: the same, in bulk (``bulk``)
* ``python -m serving join --config ... [--span N]``: labelled spans (``join``)

Modules, one job each:

* ``labels``: what a label is per label kind (the raw label column's value) and its domain
* ``index``: which request ids the gateway logged recently (the 404 check), rebuilt from disk
* ``store``: labels on disk, append-only and fsynced (``<log>/feedback/span-<N>/*.jsonl``)
* ``service``: the checks and the write, shared by the endpoint and the CSV import
* ``join``: ``<log>/labelled/span-<N>/version-<V>/data.tfrecord.gz``, a new version per label change
* ``bulk``: the CSV import; ``settings``: config -> gateway wiring
* ``verdicts``: statement verdicts, the other item kind: a reader's right/wrong on a lean
  the browser extension scored offline (no request id), in ``<log>/feedback/verdicts/``
"""
