"""TF Serving's own configuration files, read and written in one place.

Why: the local gateway and real TF Serving (Kubernetes ConfigMap) must agree on
which versions are served under which label. Both read the same
``models.config`` text proto (``tensorflow_serving.config.ModelServerConfig``),
so a rollout done locally (``stable``/``canary`` labels) is expressed exactly as
TF Serving would read it, and the batching and monitoring files are rendered
from the same dataset config that the pipeline uses.

Files (all TF Serving text protos):

* ``models.config``      ``--model_config_file``: models, base paths, served
  versions and version labels.
* ``batching.config``    ``--batching_parameters_file`` (from
  ``serving.batching`` in the dataset config).
* ``monitoring.config``  ``--monitoring_config_file``: Prometheus endpoint.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from typing import Dict, Mapping, Optional, Sequence, Tuple

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common.config import BatchingConfig, PipelineConfig

STABLE = "stable"
CANARY = "canary"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class ModelsConfigError(ValueError):
    """A models.config file or an edit of it is invalid; the message names the file and field."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model in ``models.config``.

    ``versions`` empty means TF Serving's default policy (serve the latest);
    otherwise exactly these versions are served (``specific`` policy), which a
    label must point into, as TF Serving requires.
    """
    name: str
    base_path: str
    versions: Tuple[int, ...] = ()
    labels: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def with_label(self, label: str, version: Optional[int]) -> "ModelEntry":
        """A copy with ``label`` moved to ``version`` (``None`` removes it).

        The version is added to the served set, so the label is always valid.
        """
        if not _LABEL.match(label):
            raise ModelsConfigError(f"label {label!r}: expected letters, digits, '_' or '-' (max 64)")
        labels = dict(self.labels)
        versions = tuple(self.versions)
        if version is None:
            labels.pop(label, None)
        else:
            if version < 1:
                raise ModelsConfigError(f"label {label!r}: expected a version >= 1, got {version}")
            labels[label] = int(version)
            if versions and version not in versions:
                versions = tuple(sorted(set(versions) | {int(version)}))
        return dataclasses.replace(self, versions=versions, labels=labels)

    def served_versions(self, available: Sequence[int]) -> Tuple[int, ...]:
        """Which of the ``available`` versions on disk this entry serves."""
        if self.versions:
            return tuple(v for v in sorted(available) if v in self.versions)
        return (max(available),) if available else ()


def to_proto(entries: Sequence[ModelEntry]) -> model_server_config_pb2.ModelServerConfig:
    """The ``ModelServerConfig`` proto for ``entries``."""
    config = model_server_config_pb2.ModelServerConfig()
    for entry in entries:
        _check_entry(entry, "<entries>")
        model = config.model_config_list.config.add()
        model.name = entry.name
        model.base_path = entry.base_path
        model.model_platform = "tensorflow"
        if entry.versions:
            model.model_version_policy.specific.versions.extend(sorted(entry.versions))
        for label, version in sorted(entry.labels.items()):
            model.version_labels[label] = version
    return config


def render(entries: Sequence[ModelEntry]) -> str:
    """``models.config`` text, exactly what TF Serving's ``--model_config_file`` reads."""
    return text_format.MessageToString(to_proto(entries))


def parse(text: str, source: str = "<models.config>") -> Dict[str, ModelEntry]:
    """Entries by model name from ``models.config`` text; errors name ``source``."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ModelsConfigError(f"{source}: not a TF Serving ModelServerConfig text proto: {error}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ModelsConfigError(f"{source}: expected a 'model_config_list' (custom_model_config is not supported)")
    entries: Dict[str, ModelEntry] = {}
    for model in config.model_config_list.config:
        policy = model.model_version_policy
        which = policy.WhichOneof("policy_choice")
        if which not in (None, "specific", "latest"):
            raise ModelsConfigError(
                f"{source}: model '{model.name}': model_version_policy '{which}' is not supported "
                "(expected 'specific' or 'latest')")
        if which == "latest" and policy.latest.num_versions not in (0, 1):
            raise ModelsConfigError(
                f"{source}: model '{model.name}': latest.num_versions > 1 is not supported; "
                "list the versions with 'specific' instead")
        entry = ModelEntry(
            name=model.name,
            base_path=model.base_path,
            versions=tuple(policy.specific.versions) if which == "specific" else (),
            labels=dict(model.version_labels))
        _check_entry(entry, source)
        if entry.name in entries:
            raise ModelsConfigError(f"{source}: model '{entry.name}' is listed twice")
        entries[entry.name] = entry
    return entries


def read(path: str) -> Dict[str, ModelEntry]:
    """Entries by model name from a ``models.config`` file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise ModelsConfigError(f"{path}: cannot read models.config: {error.strerror}") from None
    return parse(text, path)


def write(path: str, entries: Sequence[ModelEntry]) -> None:
    """Writes ``models.config`` atomically (temp file + rename).

    TF Serving polls this file (``--model_config_file_poll_wait_seconds``) and
    so does the gateway: a reader must never see half a file.
    """
    text = render(entries)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".models.config.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def entry_for(cfg: PipelineConfig, base_path: str, versions: Sequence[int] = (),
              labels: Optional[Mapping[str, int]] = None) -> ModelEntry:
    """The entry for the dataset's model, served from ``base_path``."""
    return ModelEntry(name=cfg.serving.model_name, base_path=base_path,
                      versions=tuple(sorted(versions)), labels=dict(labels or {}))


def render_batching(batching: BatchingConfig) -> str:
    """``--batching_parameters_file`` text (TF Serving's BatchingParameters proto)."""
    return (
        f"max_batch_size {{ value: {batching.max_batch_size} }}\n"
        f"batch_timeout_micros {{ value: {batching.batch_timeout_micros} }}\n"
        f"max_enqueued_batches {{ value: {batching.max_enqueued_batches} }}\n"
        f"num_batch_threads {{ value: {batching.num_batch_threads} }}\n")


def render_monitoring() -> str:
    """``--monitoring_config_file`` text: Prometheus metrics at PROMETHEUS_PATH."""
    return f'prometheus_config {{\n  enable: true\n  path: "{PROMETHEUS_PATH}"\n}}\n'


def _check_entry(entry: ModelEntry, source: str) -> None:
    where = f"{source}: model '{entry.name}'"
    if not _MODEL_NAME.match(entry.name):
        raise ModelsConfigError(f"{where}: name: expected letters, digits, '_' or '-', got {entry.name!r}")
    if not entry.base_path:
        raise ModelsConfigError(f"{where}: base_path: expected a directory, got an empty string")
    if any(v < 1 for v in entry.versions):
        raise ModelsConfigError(f"{where}: versions: expected integers >= 1, got {list(entry.versions)}")
    for label, version in entry.labels.items():
        if not _LABEL.match(label):
            raise ModelsConfigError(f"{where}: version_labels: bad label {label!r}")
        if entry.versions and version not in entry.versions:
            raise ModelsConfigError(
                f"{where}: version_labels: label '{label}' points to version {version}, "
                f"which is not among the served versions {sorted(entry.versions)}")
