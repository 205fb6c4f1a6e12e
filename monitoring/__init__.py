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

Layering: imports ``common`` only (plus TFDV, TF metadata, NumPy, pandas).
"""
