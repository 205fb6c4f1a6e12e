"""serving.k8s: TF Serving manifests rendered from the taxi config, checked against the Kubernetes schemas.

No cluster: the installed ``kubernetes`` client's OpenAPI models are the
schema (serving.k8s.validate). Every test renders from the real config file.
"""
import copy
import os
import re

import pytest
import yaml
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,  # noqa: F401  (registers Int64Value for the pool below)
)

from common.config import ConfigError
from common.loader import load_config
from serving import models_config
from serving.k8s import render, validate
from serving.k8s.__main__ import main
from tests.conftest import REPO, TAXI_CONFIG

GCS = "gs://example-bucket/tfx/taxi/serving/taxi"


def _by_kind(manifests):
    return {m["kind"]: m for m in manifests}


@pytest.fixture(scope="module")
def cfg():
    return load_config(TAXI_CONFIG, [f"serving.kubernetes.storage_uri={GCS}"])


@pytest.fixture(scope="module")
def pvc_cfg():
    return load_config(TAXI_CONFIG, ["serving.kubernetes.storage_uri=pvc://tf-models/serving/taxi"])


@pytest.fixture(scope="module")
def labelled(cfg):
    return render.render(cfg, stable=3, canary=4)


def _container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _flags(container):
    return dict(arg[2:].split("=", 1) for arg in container["args"])


# ---------------------------------------------------------------- schemas

@pytest.mark.parametrize("fixture", ["cfg", "pvc_cfg"])
@pytest.mark.parametrize("versions", [(None, None), (3, None), (3, 4)])
def test_every_object_matches_the_kubernetes_schema(request, fixture, versions):
    config = request.getfixturevalue(fixture)
    rendered = render.render(config, *versions)
    assert set(rendered) == {"tf-serving", "kserve"}
    kinds = {"tf-serving": ["ConfigMap", "Deployment", "Service"], "kserve": ["ConfigMap", "InferenceService"]}
    for alternative, manifests in rendered.items():
        assert [m["kind"] for m in manifests] == kinds[alternative]
        validate.check_all(manifests)
    typed = validate.check_model(_by_kind(rendered["tf-serving"])["Deployment"], "V1Deployment", "deployment")
    assert typed.spec.template.spec.containers[0].ports[1].container_port == config.serving.rest_port


def test_schema_check_rejects_unknown_mistyped_and_missing_fields(labelled):
    deployment = _by_kind(labelled["tf-serving"])["Deployment"]
    typo = copy.deepcopy(deployment)
    _container(typo)["ports"][0]["hostport"] = 8501
    with pytest.raises(validate.ManifestError, match=r"containers\[0\]\.ports\[0\]\.hostport: unknown field"):
        validate.check(typo)
    mistyped = copy.deepcopy(deployment)
    mistyped["spec"]["replicas"] = "2"
    with pytest.raises(validate.ManifestError, match=r"spec\.replicas: '2' \(str\)"):
        validate.check(mistyped)
    nameless = copy.deepcopy(deployment)
    del _container(nameless)["name"]
    with pytest.raises(validate.ManifestError, match="name.*must not be `None`"):
        validate.check(nameless)
    service = copy.deepcopy(_by_kind(labelled["tf-serving"])["Service"])
    service["apiVersion"] = "apps/v1"
    with pytest.raises(validate.ManifestError, match="Service taxi-tf-serving: apiVersion: expected 'v1'"):
        validate.check(service)


def test_inference_service_check_rejects_bad_predictors(labelled):
    isvc = _by_kind(labelled["kserve"])["InferenceService"]
    unknown = copy.deepcopy(isvc)
    unknown["spec"]["predictor"]["containers"][0]["storageUri"] = GCS
    with pytest.raises(validate.ManifestError,
                       match=r"spec\.predictor: not a valid V1PodSpec: containers\[0\]\.storageUri: unknown field"):
        validate.check(unknown)
    mistyped = copy.deepcopy(isvc)
    mistyped["spec"]["predictor"]["minReplicas"] = "2"
    with pytest.raises(validate.ManifestError, match=r"spec\.predictor\.minReplicas: expected int"):
        validate.check(mistyped)
    wrong_version = dict(isvc, apiVersion="serving.kubeflow.org/v1alpha2")
    with pytest.raises(validate.ManifestError, match="apiVersion: expected 'serving.kserve.io/v1beta1'"):
        validate.check(wrong_version)
    no_storage = copy.deepcopy(isvc)
    no_storage["spec"]["predictor"]["containers"][0]["env"] = []
    with pytest.raises(validate.ManifestError, match="STORAGE_URI"):
        validate.check(no_storage)


# ---------------------------------------------------------------- Deployment, Service

def test_deployment_runs_the_tf_serving_image_of_the_config_tag(cfg, labelled):
    container = _container(_by_kind(labelled["tf-serving"])["Deployment"])
    assert container["image"] == f"tensorflow/serving:{cfg.serving.tf_serving_tag}"
    assert container["image"].rsplit(":", 1)[1] == cfg.serving.tf_serving_tag
    assert container["command"] == ["/usr/bin/tensorflow_model_server"]


def test_every_value_follows_the_config_not_a_default():
    config = load_config(TAXI_CONFIG, [
        f"serving.kubernetes.storage_uri={GCS}", "serving.tf_serving_tag=2.15.1", "serving.rest_port=9001",
        "serving.grpc_port=9000", "serving.model_name=Taxi_Tips", "serving.kubernetes.namespace=ml-serving",
        "serving.kubernetes.replicas=3", "serving.kubernetes.max_replicas=5"])
    rendered = render.render(config, stable=7)
    tf_serving, kserve = _by_kind(rendered["tf-serving"]), _by_kind(rendered["kserve"])
    container = _container(tf_serving["Deployment"])
    predictor = kserve["InferenceService"]["spec"]["predictor"]
    assert container["image"] == predictor["containers"][0]["image"] == "tensorflow/serving:2.15.1"
    assert _flags(container)["rest_api_port"] == "9001" and _flags(container)["port"] == "9000"
    assert {p["port"] for p in tf_serving["Service"]["spec"]["ports"]} == {9000, 9001}
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/models/Taxi_Tips"
    assert predictor["containers"][0]["ports"][0]["containerPort"] == 9001
    assert tf_serving["Deployment"]["metadata"]["name"] == "taxi-tips-tf-serving"
    assert kserve["InferenceService"]["metadata"]["name"] == "taxi-tips"
    assert {m["metadata"]["namespace"] for m in rendered["tf-serving"] + rendered["kserve"]} == {"ml-serving"}
    assert tf_serving["Deployment"]["spec"]["replicas"] == 3 and predictor["maxReplicas"] == 5
    assert "Taxi_Tips" in models_config.parse(tf_serving["ConfigMap"]["data"]["models.config"])
    for manifests in rendered.values():
        validate.check_all(manifests)


def test_tf_serving_tag_matches_the_locked_tensorflow():
    """TF Serving must run the TF minor version we train with (SavedModel ops)."""
    with open(os.path.join(REPO, "requirements.txt")) as f:
        pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", f.read(), re.M))
    tag = load_config(TAXI_CONFIG).serving.tf_serving_tag
    assert tag == pins["tensorflow-serving-api"]
    assert tag.split(".")[:2] == pins["tensorflow"].split(".")[:2]


def test_flags_point_at_the_mounted_configmap_and_the_config_ports(cfg, labelled):
    deployment = _by_kind(labelled["tf-serving"])["Deployment"]
    container = _container(deployment)
    flags = _flags(container)
    assert flags["port"] == str(cfg.serving.grpc_port) and flags["rest_api_port"] == str(cfg.serving.rest_port)
    assert flags["enable_batching"] == "true"
    assert flags["model_config_file_poll_wait_seconds"] == str(cfg.serving.kubernetes.model_config_poll_seconds)
    assert flags["allow_version_labels_for_unavailable_models"] == "true"
    config_mount = next(m for m in container["volumeMounts"] if m["name"] == "tf-serving-config")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "tf-serving-config")
    configmap = _by_kind(labelled["tf-serving"])["ConfigMap"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert "subPath" not in config_mount  # subPath mounts never see ConfigMap updates
    for flag, key in (("model_config_file", "models.config"), ("batching_parameters_file", "batching.config"),
                      ("monitoring_config_file", "monitoring.config")):
        assert flags[flag] == f"{config_mount['mountPath']}/{key}" and key in configmap["data"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": cfg.serving.grpc_port, "http": cfg.serving.rest_port}


def test_probes_hit_the_rest_urls_of_the_model(cfg, labelled):
    """Liveness: the status URL. Startup/readiness: metadata, which fails until a version is loaded."""
    container = _container(_by_kind(labelled["tf-serving"])["Deployment"])
    names = {p["name"] for p in container["ports"]}
    paths = {probe: container[probe]["httpGet"]["path"]
             for probe in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert paths == {"livenessProbe": f"/v1/models/{cfg.serving.model_name}",
                     "readinessProbe": f"/v1/models/{cfg.serving.model_name}/labels/stable/metadata",
                     "startupProbe": f"/v1/models/{cfg.serving.model_name}/labels/stable/metadata"}
    assert all(container[probe]["httpGet"]["port"] == "http" in names for probe in paths)
    unpinned = _container(_by_kind(render.render(cfg)["tf-serving"])["Deployment"])
    assert unpinned["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{cfg.serving.model_name}/metadata"


def test_service_exposes_named_rest_and_grpc_ports_of_the_pods(cfg, labelled):
    manifests = _by_kind(labelled["tf-serving"])
    service, deployment = manifests["Service"], manifests["Deployment"]
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"grpc": (cfg.serving.grpc_port, "grpc"), "http": (cfg.serving.rest_port, "http")}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert deployment["spec"]["replicas"] == cfg.serving.kubernetes.replicas
    assert all(m["metadata"]["namespace"] == cfg.serving.kubernetes.namespace for m in manifests.values())


def test_prometheus_scrapes_the_monitoring_path_on_the_rest_port(cfg, labelled):
    deployment = _by_kind(labelled["tf-serving"])["Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(cfg.serving.rest_port)
    assert annotations["prometheus.io/path"] == models_config.PROMETHEUS_PATH
    monitoring = _by_kind(labelled["tf-serving"])["ConfigMap"]["data"]["monitoring.config"]
    assert _proto("MonitoringConfig", monitoring).prometheus_config.path == annotations["prometheus.io/path"]


def test_resources_come_from_the_config(cfg, labelled):
    container = _container(_by_kind(labelled["tf-serving"])["Deployment"])
    assert container["resources"] == {k: dict(v) for k, v in cfg.serving.kubernetes.resources.items()}


# ---------------------------------------------------------------- ConfigMap: TF Serving's files

def test_models_config_parses_back_to_the_model_with_labels(cfg, labelled):
    text = _by_kind(labelled["tf-serving"])["ConfigMap"]["data"]["models.config"]
    entries = models_config.parse(text, "configmap")
    assert entries == {"taxi": models_config.ModelEntry(
        name=cfg.serving.model_name, base_path=GCS, versions=(3, 4), labels={"stable": 3, "canary": 4})}


def test_without_versions_the_latest_is_served_and_no_labels_are_allowed(cfg):
    manifests = _by_kind(render.render(cfg)["tf-serving"])
    entry = models_config.parse(manifests["ConfigMap"]["data"]["models.config"])["taxi"]
    assert entry.versions == () and entry.labels == {} and entry.base_path == GCS
    assert "allow_version_labels_for_unavailable_models" not in _flags(_container(manifests["Deployment"]))


def test_pvc_storage_is_mounted_at_the_base_path_of_models_config(pvc_cfg):
    manifests = _by_kind(render.render(pvc_cfg, stable=2)["tf-serving"])
    entry = models_config.parse(manifests["ConfigMap"]["data"]["models.config"])["taxi"]
    assert entry.labels == {"stable": 2} and entry.versions == (2,)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")
    volume = next(v for v in pod["volumes"] if v["name"] == "models")
    assert mount == {"name": "models", "mountPath": entry.base_path, "readOnly": True, "subPath": "serving/taxi"}
    assert volume["persistentVolumeClaim"] == {"claimName": "tf-models", "readOnly": True}


def test_gcs_credentials_secret_is_mounted_and_named_by_env():
    config = load_config(TAXI_CONFIG, [f"serving.kubernetes.storage_uri={GCS}",
                                       "serving.kubernetes.credentials_secret=tf-serving-gcp"])
    deployment = _by_kind(render.render(config)["tf-serving"])["Deployment"]
    container = _container(deployment)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "google-credentials")
    assert container["env"] == [{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{mount['mountPath']}/key.json"}]
    validate.check(deployment)


def test_batching_config_is_tf_servings_batching_parameters(cfg, labelled):
    text = _by_kind(labelled["tf-serving"])["ConfigMap"]["data"]["batching.config"]
    params = _proto("BatchingParameters", text)
    batching = cfg.serving.batching
    assert (params.max_batch_size.value, params.batch_timeout_micros.value, params.max_enqueued_batches.value,
            params.num_batch_threads.value) == (batching.max_batch_size, batching.batch_timeout_micros,
                                                batching.max_enqueued_batches, batching.num_batch_threads)


def test_batching_disabled_drops_the_file_and_the_flag():
    config = load_config(TAXI_CONFIG, [f"serving.kubernetes.storage_uri={GCS}", "serving.batching.enabled=false"])
    for alternative in render.render(config).values():
        configmap = alternative[0]
        assert "batching.config" not in configmap["data"]
        pod = alternative[1]["spec"].get("template", {}).get("spec") or alternative[1]["spec"]["predictor"]
        flags = _flags(pod["containers"][0])
        assert flags["enable_batching"] == "false" and "batching_parameters_file" not in flags
        validate.check_all(alternative)


def test_only_files_read_at_start_up_roll_the_pods(cfg):
    def checksum(config, **versions):
        deployment = _by_kind(render.render(config, **versions)["tf-serving"])["Deployment"]
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/tf-serving-config"]

    assert checksum(cfg) == checksum(cfg, stable=1, canary=2)  # models.config is polled
    bigger = load_config(TAXI_CONFIG, [f"serving.kubernetes.storage_uri={GCS}", "serving.batching.max_batch_size=64"])
    assert checksum(bigger) != checksum(cfg)


def test_tfx_infra_validator_in_the_cluster_uses_the_same_image_and_service_account():
    from components.infra_validation import serving_spec

    config = load_config(TAXI_CONFIG, ["serving.infra_validation=kubernetes",
                                       "serving.kubernetes.service_account=tf-serving"])
    spec = serving_spec(config)
    container = _container(_by_kind(render.render(
        load_config(TAXI_CONFIG, ["serving.kubernetes.service_account=tf-serving"]))["tf-serving"])["Deployment"])
    assert f"{spec.tensorflow_serving.image_name}:{spec.tensorflow_serving.tags[0]}" == container["image"]
    assert spec.kubernetes.service_account_name == "tf-serving"


# ---------------------------------------------------------------- KServe

def test_inference_service_serves_the_same_image_flags_and_labels(cfg, labelled):
    isvc = _by_kind(labelled["kserve"])["InferenceService"]
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert isvc["metadata"]["name"] == "taxi"
    predictor = isvc["spec"]["predictor"]
    container = predictor["containers"][0]
    deployment_container = _container(_by_kind(labelled["tf-serving"])["Deployment"])
    assert container["name"] == "kserve-container"
    assert container["image"] == f"tensorflow/serving:{cfg.serving.tf_serving_tag}"
    assert container["args"] == deployment_container["args"]
    assert container["env"] == [{"name": "STORAGE_URI", "value": GCS}]
    assert container["ports"] == [{"name": "http1", "containerPort": cfg.serving.rest_port, "protocol": "TCP"}]
    assert container["readinessProbe"] == deployment_container["readinessProbe"] | {
        "httpGet": {**deployment_container["readinessProbe"]["httpGet"], "port": cfg.serving.rest_port}}
    assert container["livenessProbe"]["httpGet"]["path"] == f"/v1/models/{cfg.serving.model_name}"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 4)
    configmap = _by_kind(labelled["kserve"])["ConfigMap"]
    assert predictor["volumes"][0]["configMap"]["name"] == configmap["metadata"]["name"]
    entry = models_config.parse(configmap["data"]["models.config"])["taxi"]
    assert entry.base_path == "/mnt/models" and entry.labels == {"stable": 3, "canary": 4}


# ---------------------------------------------------------------- Prometheus alerting rules

def _rules(rule_manifest):
    return {r["alert"]: r for group in rule_manifest["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rule_carries_the_monitoring_thresholds_of_the_config():
    config = load_config(TAXI_CONFIG, [
        "monitoring.max_error_rate=0.05", "monitoring.max_p99_latency_ms=250", "monitoring.rule_window=2m",
        "monitoring.rule_for=3m", "serving.model_name=tips", "serving.request_log_window_seconds=600",
        "serving.kubernetes.namespace=ml-serving"])
    manifest, _ = render.monitoring_manifests(config)
    validate.check(manifest)
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert manifest["metadata"]["name"] == "tips-alerts" and manifest["metadata"]["namespace"] == "ml-serving"
    by_name = _rules(manifest)
    assert sorted(by_name) == ["GatewayErrorRateHigh", "GatewayLatencyP99High", "MonitoringCheckStale",
                               "ServedDataAlert", "TFServingErrorRateHigh", "TFServingLatencyP99High"]
    for name in ("GatewayErrorRateHigh", "TFServingErrorRateHigh"):
        assert by_name[name]["expr"].endswith("> 0.05") and "[2m]" in by_name[name]["expr"]
        assert by_name[name]["for"] == "3m"
    assert by_name["GatewayErrorRateHigh"]["expr"].count('model="tips"') == 2
    assert 'code=~"5.."' in by_name["GatewayErrorRateHigh"]["expr"]
    assert 'model_name="tips",status!="OK"' in by_name["TFServingErrorRateHigh"]["expr"]
    # the gateway's latency is in seconds, TF Serving's in microseconds: both compared in ms
    assert by_name["GatewayLatencyP99High"]["expr"].startswith("histogram_quantile(0.99, ")
    assert "gateway_request_latency_seconds_bucket" in by_name["GatewayLatencyP99High"]["expr"]
    assert by_name["GatewayLatencyP99High"]["expr"].endswith("* 1000 > 250")
    assert by_name["TFServingLatencyP99High"]["expr"].endswith("/ 1000 > 250")
    assert by_name["ServedDataAlert"]["expr"] == (
        'max by (model, comparator, feature, measure, version) (monitoring_alert{model="tips"}) > 0')
    assert by_name["MonitoringCheckStale"]["expr"].endswith("> 1200")  # two spans of 600 s
    assert all(r["labels"]["severity"] in ("warning", "critical") for r in by_name.values())


def test_rule_check_rejects_what_prometheus_would_not_load():
    manifest, _ = render.monitoring_manifests(load_config(TAXI_CONFIG))

    def broken(change):
        copy_ = copy.deepcopy(manifest)
        change(copy_["spec"]["groups"])
        return copy_

    cases = [
        (lambda g: g[0]["rules"][0].update(expr="sum(rate(x[5m])"), r"rules\[0\]\.expr: unclosed '\('"),
        (lambda g: g[0]["rules"][0].update(expr="sum(rate(x{a=\"(\"}[5m]))"), None),  # a quoted bracket
        (lambda g: g[0]["rules"][0].update(expr="x}"), r"unbalanced '\}'"),
        (lambda g: g[0]["rules"][0].update({"for": "10 minutes"}), r"\.for: '10 minutes' is not a Prometheus"),
        (lambda g: g[0]["rules"][0].update(severity="page"), r"rules\[0\]: unknown fields \['severity'\]"),
        (lambda g: g[0]["rules"][0].pop("expr"), r"rules\[0\]\.expr: required"),
        (lambda g: g[0]["rules"][0]["labels"].update(severity=3), r"labels\.severity: expected a label name"),
        (lambda g: g[1].update(name=g[0]["name"]), r"groups\[1\]\.name: 'taxi-serving-health' is used by two"),
        (lambda g: g[1].update(rules=[]), r"groups\[1\]\.rules: expected at least one rule"),
    ]
    for change, message in cases:
        if message is None:
            validate.check(broken(change))
            continue
        with pytest.raises(validate.ManifestError, match=message):
            validate.check(broken(change))
    with pytest.raises(validate.ManifestError, match="apiVersion: expected 'monitoring.coreos.com/v1'"):
        validate.check(dict(manifest, apiVersion="monitoring.coreos.com/v1beta1"))


@pytest.mark.parametrize("override, key", [
    ("monitoring.rule_window=5 minutes", "monitoring.rule_window"),
    ("monitoring.rule_for=10", "monitoring.rule_for"),
    ("monitoring.max_error_rate=5", "monitoring.max_error_rate"),
    ("monitoring.max_p99_latency_ms=0", "monitoring.max_p99_latency_ms"),
])
def test_bad_monitoring_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}'")):
        load_config(TAXI_CONFIG, [override])


# ---------------------------------------------------------------- CLI

def test_cli_writes_one_file_per_kind_and_an_all_in_one(tmp_path, capsys):
    out = tmp_path / "k8s"
    assert main(["--config", TAXI_CONFIG, "--out", str(out), "--stable", "3", "--canary", "4"]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(os.path.relpath(p, out) for p in written) == sorted([
        "tf-serving/configmap.yaml", "tf-serving/deployment.yaml", "tf-serving/service.yaml", "tf-serving.yaml",
        "kserve/configmap.yaml", "kserve/inferenceservice.yaml", "kserve.yaml",
        "monitoring/prometheusrule.yaml", "monitoring/analysistemplate.yaml", "monitoring.yaml",
        "prometheus-rules.yaml"])
    for alternative in ("tf-serving", "kserve", "monitoring"):
        together = list(yaml.safe_load_all((out / f"{alternative}.yaml").read_text()))
        apart = [yaml.safe_load((out / alternative / f"{m['kind'].lower()}.yaml").read_text()) for m in together]
        assert together == apart
        validate.check_all(together)
    configmap = yaml.safe_load((out / "tf-serving" / "configmap.yaml").read_text())
    assert models_config.parse(configmap["data"]["models.config"])["taxi"].labels == {"stable": 3, "canary": 4}
    plain = yaml.safe_load((out / "prometheus-rules.yaml").read_text())
    rule = yaml.safe_load((out / "monitoring" / "prometheusrule.yaml").read_text())
    assert plain == {"groups": rule["spec"]["groups"]}
    validate.check_rule_groups(plain["groups"], "prometheus-rules.yaml")
    assert "models.config: |" in (out / "tf-serving" / "configmap.yaml").read_text()  # readable block


def test_cli_reports_a_bad_config_value_naming_the_key(tmp_path, capsys):
    code = main(["--config", TAXI_CONFIG, "--out", str(tmp_path), "--set", "serving.kubernetes.replicas=0"])
    assert code == 2 and "serving.kubernetes.replicas" in capsys.readouterr().err
    assert not os.listdir(tmp_path)
    assert main(["--config", TAXI_CONFIG, "--out", str(tmp_path), "--canary", "4"]) == 2
    assert "--stable" in capsys.readouterr().err


# ---------------------------------------------------------------- bad config values

@pytest.mark.parametrize("override, key", [
    ("serving.kubernetes.namespace=Prod_NS", "serving.kubernetes.namespace"),
    ("serving.kubernetes.replicas=0", "serving.kubernetes.replicas"),
    ("serving.kubernetes.max_replicas=1", "serving.kubernetes.max_replicas"),
    ("serving.kubernetes.storage_uri=s3://bucket/taxi", "serving.kubernetes.storage_uri"),
    ("serving.kubernetes.storage_uri=pvc://Bad_Claim/taxi", "serving.kubernetes.storage_uri"),
    ("serving.kubernetes.model_config_poll_seconds=0", "serving.kubernetes.model_config_poll_seconds"),
    ("serving.kubernetes.service_account=Not_A_Name", "serving.kubernetes.service_account"),
    ("serving.kubernetes.resources.limits.memory=lots", "serving.kubernetes.resources.limits.memory"),
    ("serving.kubernetes.resources.requests.cpu=4", "serving.kubernetes.resources.requests.cpu"),
    ("serving.kubernetes.resources.requests.cpu='4'", "serving.kubernetes.resources.requests.cpu"),
    ("serving.kubernetes.resources.reqests={cpu: '1'}", "serving.kubernetes.resources.reqests"),
    ("serving.kubernetes.replica=3", "serving.kubernetes.replica"),
])
def test_bad_kubernetes_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}'")):
        load_config(TAXI_CONFIG, [override])


def test_model_names_kubernetes_cannot_use_and_missing_storage_name_the_key():
    with pytest.raises(ConfigError, match="key 'serving.model_name'"):
        render.render(load_config(TAXI_CONFIG, ["serving.model_name=taxi_"]))
    with pytest.raises(ConfigError, match="key 'serving.kubernetes.storage_uri'.*runs/serving"):
        render.render(load_config(TAXI_CONFIG, ["serving.kubernetes.storage_uri=''"]))
    derived = load_config(TAXI_CONFIG, ["serving.kubernetes.storage_uri=''", "serving.push_dir=gs://b/serving"])
    assert render.storage(derived).base_path == "gs://b/serving/taxi"
    with pytest.raises(ConfigError, match="--canary"):
        render.render(load_config(TAXI_CONFIG), stable=3, canary=3)


# ---------------------------------------------------------------- helpers

def _proto(name, text):
    """Parse ``text`` as TF Serving's BatchingParameters or MonitoringConfig.

    tensorflow-serving-api ships neither message, so their definitions are
    declared here with TF Serving's field names, numbers and types
    (servables/tensorflow/session_bundle_config.proto, config/monitoring_config.proto);
    text_format rejects any field or type they do not have.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="test_k8s_tf_serving.proto", package="test_k8s.tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"])
    f = descriptor_pb2.FieldDescriptorProto
    optional, repeated = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    batching = file.message_type.add(name="BatchingParameters")
    for number, field in enumerate(["max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                                    "num_batch_threads"], start=1):
        batching.field.add(name=field, number=number, label=optional, type=f.TYPE_MESSAGE,
                           type_name=".google.protobuf.Int64Value")
    batching.field.add(name="thread_pool_name", number=5, label=optional, type=f.TYPE_MESSAGE,
                       type_name=".google.protobuf.StringValue")
    batching.field.add(name="allowed_batch_sizes", number=6, label=repeated, type=f.TYPE_INT64)
    batching.field.add(name="pad_variable_length_inputs", number=7, label=optional, type=f.TYPE_BOOL)
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, label=optional, type=f.TYPE_BOOL)
    prometheus.field.add(name="path", number=2, label=optional, type=f.TYPE_STRING)
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, label=optional, type=f.TYPE_MESSAGE,
                         type_name=".test_k8s.tensorflow.serving.PrometheusConfig")
    pool = descriptor_pool.DescriptorPool()
    for dependency in ("google/protobuf/wrappers.proto",):
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor_pool.Default().FindFileByName(dependency).CopyToProto(proto)
        pool.Add(proto)
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName(f"test_k8s.tensorflow.serving.{name}")
    message = message_factory.MessageFactory(pool).GetPrototype(descriptor)()
    text_format.Parse(text, message)
    return message
