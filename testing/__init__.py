"""Test data builders shared by ``tests/`` and ``bench/``; no tests live here.

- ``edge_model``: tiny models (taxi rows, or any tft_beam instances) trained in-process and
  exported with their edge files.
- ``tiny_model``: a SavedModel with the taxi serving interface and a known formula, plus the
  gateway arguments the serving tests start it with.
- ``served_spans``: request-log spans of taxi rows (same-distribution or shifted) and a test
  calibration, for the monitoring tests.
- ``liar_fixture``: invented rows in LIAR's TSV format (the real data is never copied here).
"""
