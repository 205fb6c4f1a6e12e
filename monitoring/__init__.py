"""Data monitoring: served spans compared with accepted history by TFDV's own distances.

The production loop's data side: a span of served traffic -> TFDV statistics ->
per-feature skew/drift distances and missing-fraction shifts -> thresholds
calibrated to a false-alarm budget -> alerts.

Why a package of its own: TFX's ExampleValidator calls ``tfdv.validate_statistics``
without previous or serving statistics, so the schema's ``skew_comparator`` and
``drift_comparator`` thresholds never fire inside the pipeline; and TFDV's
Jensen-Shannon divergence grows as spans shrink, so a threshold only means
something for a given span size. Here the distances are TFDV's own
(``distances``), thresholds are set from the null distribution of those
distances at the expected span size (``calibration``), and missing values,
which no TFDV distance sees, are compared separately (``presence``).

Served traffic (``check``, ``report``): a span of the request log is read
(``served``), compared with the training history in the same view as
calibration (``reference``) and with the previous span, its schema anomalies
taken in the SERVING environment; its model outputs (``predictions``),
feedback labels (``labelled``) and the gateway's metrics (``health``) are
measured too. Every figure is a ``alerts.Measurement``; those crossing their
thresholds are alerts, filed in ``alerts.jsonl``, ML Metadata (``metadata``)
and a Prometheus textfile (``textfile``); ``report`` draws them (``plots``).

The model side (``retraining``, ``decide``, ``differential``, ``replay``): the
retraining rule over the recorded checks, with data incidents kept out of any
training window, and a served span replayed through two model versions.

Layering: imports ``common`` and ``serving`` (the request log, feedback labels, the
model loader) only, plus TFDV, TFMA (eval accuracy), TF metadata, ML Metadata,
NumPy, pandas and matplotlib.
"""
