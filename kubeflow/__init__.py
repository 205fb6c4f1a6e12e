"""Kubeflow Pipelines: compile ``create_pipeline`` to a KFP v2 spec (runner), build the image
(Dockerfile), submit a run (submit)."""
