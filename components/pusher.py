"""Pusher with an atomic write into a TF Serving model repository.

TFX's own Pusher copies file by file into ``<base>/<version>``, so a model
server polling the directory can see a half-copied version, and two pushes
within one second collide. This executor (TFX's Pusher with only the copy
replaced) copies into a hidden temporary directory, which TF Serving ignores
because its name is not a number, then renames it into place in one step.
Earlier versions are left untouched, and pushing the model that is already
the newest version (a rerun with nothing changed) adds no duplicate version.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


def next_version(base_directory: str) -> str:
    """A unix-timestamp version newer than any already in ``base_directory``."""
    existing = [int(d) for d in os.listdir(base_directory) if d.isdigit()] \
        if os.path.isdir(base_directory) else []
    return str(max([int(time.time())] + [v + 1 for v in existing]))


def identical_trees(left: str, right: str) -> bool:
    """Same relative file names with the same bytes under both directories."""
    def files(root: str):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)

    names = files(left)
    if names != files(right):
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, names, shallow=False)
    return not mismatch and not errors


def newest_version(base_directory: str) -> Optional[str]:
    """The path of the highest numeric version, or None."""
    versions = [int(d) for d in os.listdir(base_directory) if d.isdigit()] \
        if os.path.isdir(base_directory) else []
    return os.path.join(base_directory, str(max(versions))) if versions else None


def atomic_copy_model(model_path: str, base_directory: str) -> str:
    """Copies a SavedModel to ``<base>/<version>`` via a rename; returns the path.

    When the newest version already holds this exact model, returns that path.
    """
    newest = newest_version(base_directory)
    if newest and identical_trees(model_path, newest):
        return newest
    os.makedirs(base_directory, exist_ok=True)
    version = next_version(base_directory)
    staging = os.path.join(base_directory, f".staging-{version}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_path, staging)
    final = os.path.join(base_directory, version)
    os.rename(staging, final)
    return final


class AtomicPushExecutor(pusher_executor.Executor):
    """TFX's Pusher executor with an atomic filesystem push."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        model_path = self.GetModelPath(input_dict)
        serving_path = atomic_copy_model(model_path, destination.filesystem.base_directory)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=os.path.basename(serving_path))


def build_pusher(model, model_blessing, infra_blessing, push_dir: str) -> tfx.components.Pusher:
    """A Pusher that needs both blessings and writes ``<push_dir>/<version>`` atomically."""
    return tfx.components.Pusher(
        model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=push_dir)),
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPushExecutor))
