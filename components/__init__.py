"""Builders for the standard TFX components and the few custom ones."""


def __getattr__(name):
    # Lazy re-export: ``components.BaselineMetrics`` is the artifact's TYPE_NAME,
    # which Kubeflow V2 imports by that path (see components/baselines.py).
    if name == "BaselineMetrics":
        from components.baselines import BaselineMetrics
        return BaselineMetrics
    if name == "ModelAnalysis":
        from components.error_analysis import ModelAnalysis
        return ModelAnalysis
    if name == "ClaimIndex":
        from components.claim_record import ClaimIndex
        return ClaimIndex
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
