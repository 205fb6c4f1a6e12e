"""Infra validation: TFX's InfraValidator where Docker/Kubernetes exist, ours elsewhere.

``serving.infra_validation`` in the config chooses. ``docker`` and
``kubernetes`` use TFX's own InfraValidator with a TF Serving ServingSpec (the
image matching the TF we train with); ``local`` starts the serving gateway
(``python -m serving start``) on a free port (components.local_infra_validator). All three write the same
InfraBlessing artifact that Pusher reads.
"""
from __future__ import annotations

import json

from tfx import types
from tfx.components.infra_validator import component as infra_validator_component
from tfx.dsl.components.base import base_component
from tfx.types import standard_artifacts

from common.config import PipelineConfig
from common.serving_contract import TF_EXAMPLE_SIGNATURE
from components import local_infra_validator
from components.tfx_api import tfx
from trainer import features


def serving_spec(cfg: PipelineConfig) -> tfx.proto.ServingSpec:
    """TF Serving in a local Docker engine or in the current Kubernetes cluster.

    In the cluster the validation pod uses ``serving.kubernetes.service_account``,
    the account the serving manifests (serving.k8s) run under.
    """
    platform = ({"local_docker": tfx.proto.LocalDockerConfig()}
                if cfg.serving.infra_validation == "docker"
                else {"kubernetes": tfx.proto.KubernetesConfig(
                    service_account_name=cfg.serving.kubernetes.service_account)})
    return tfx.proto.ServingSpec(
        tensorflow_serving=tfx.proto.TensorFlowServing(
            image_name=cfg.serving.tf_serving_image, tags=[cfg.serving.tf_serving_tag]),
        model_name=cfg.serving.model_name, **platform)


class TfxInfraValidator(base_component.BaseComponent):
    """TFX's InfraValidator (same spec, driver and executor) under another class.

    KubeflowV2DagRunner rejects ``isinstance(node, tfx.components.InfraValidator)``
    at compile time; this sibling class is not a subclass, so the Kubernetes
    branch compiles, and the pod still runs TFX's own InfraValidator executor.
    """
    SPEC_CLASS = infra_validator_component.InfraValidator.SPEC_CLASS
    EXECUTOR_SPEC = infra_validator_component.InfraValidator.EXECUTOR_SPEC
    DRIVER_CLASS = infra_validator_component.InfraValidator.DRIVER_CLASS

    def __init__(self, model, serving_spec, examples=None, request_spec=None, validation_spec=None):
        super().__init__(spec=self.SPEC_CLASS(
            model=model, examples=examples, serving_spec=serving_spec,
            validation_spec=validation_spec, request_spec=request_spec,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing)))


def build_infra_validator(cfg: PipelineConfig, model, examples):
    """Either validator, under the one node id ``InfraValidator``."""
    return _validator(cfg, model, examples).with_id("InfraValidator")


def _validator(cfg: PipelineConfig, model, examples):
    if cfg.serving.infra_validation == "local":
        return local_infra_validator.LocalInfraValidator(
            model=model, examples=examples, model_name=cfg.serving.model_name,
            feature_keys_json=json.dumps(features.serving_feature_dtypes(cfg)),
            num_requests=cfg.serving.canary_requests,
            latency_budget_ms=cfg.serving.latency_budget_ms,
            schema_path=cfg.schema)
    return TfxInfraValidator(
        model=model, examples=examples, serving_spec=serving_spec(cfg),
        validation_spec=tfx.proto.ValidationSpec(max_loading_time_seconds=120, num_tries=3),
        request_spec=tfx.proto.RequestSpec(
            tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec(signature_names=[TF_EXAMPLE_SIGNATURE]),
            num_examples=cfg.serving.canary_requests)).with_id("InfraValidator")
