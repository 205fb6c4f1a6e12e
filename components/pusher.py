"""Pusher with an atomic write into a TF Serving model repository, on any filesystem.

TFX's own Pusher copies file by file into ``<base>/<version>``, so a model
server polling the directory can see a half-copied version, and two pushes
within one second collide. This executor (TFX's Pusher with only the copy
replaced) copies into a hidden staging directory, which TF Serving ignores
because its name is not a number, then renames it into place, then writes a
completion marker (``PUSH_COMPLETE_FILE``) into the version, last.

Every file operation goes through TFX's ``fileio``, so ``base_directory`` may
be local or a remote URI (``gs://``, ``s3://``, ``hdfs://``; any registered
filesystem plugin). Atomicity depends on the filesystem's rename:

* local disks and HDFS rename a directory in one step: a version appears
  complete or not at all;
* object stores have no directory rename: on GCS (and S3) it is a copy of each
  object followed by a delete, so ``<version>/`` fills up object by object.
  TF Serving retries a version that failed to load, but a consumer that must
  never try a partial version has to treat a version as complete only once
  ``<version>/PUSH_COMPLETE`` exists (the serving gateway, or whatever syncs a
  bucket into TF Serving, should check it).

Earlier versions are left untouched, and pushing the model that is already
the newest version (a rerun with nothing changed) adds no duplicate version.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

PUSH_COMPLETE_FILE = "PUSH_COMPLETE"  # written last into a version: the push finished
STAGING_PREFIX = ".staging-"


def _versions(base_directory: str) -> List[int]:
    """Numeric version names under ``base_directory`` (object stores list
    directories with a trailing slash)."""
    if not fileio.isdir(base_directory):
        return []
    names = (str(name).rstrip("/") for name in fileio.listdir(base_directory))
    return [int(name) for name in names if name.isdigit()]


def next_version(base_directory: str) -> str:
    """A unix-timestamp version newer than any already in ``base_directory``."""
    return str(max([int(time.time())] + [v + 1 for v in _versions(base_directory)]))


def newest_version(base_directory: str) -> Optional[str]:
    """The path of the highest numeric version, or None."""
    versions = _versions(base_directory)
    return os.path.join(base_directory, str(max(versions))) if versions else None


def _files(root: str) -> Iterator[Tuple[str, str]]:
    """(path relative to ``root``, full path) of every file below ``root``, but the marker."""
    root = root.rstrip("/")
    for directory, _, names in fileio.walk(root):
        directory = str(directory).rstrip("/")  # fileio.walk yields paths under ``root`` as given
        for name in names:
            path = f"{directory}/{name}"
            if path[len(root) + 1:] != PUSH_COMPLETE_FILE:
                yield path[len(root) + 1:], path


def identical_trees(left: str, right: str) -> bool:
    """Same relative file names with the same bytes under both directories
    (the completion marker aside)."""
    left_files, right_files = dict(_files(left)), dict(_files(right))
    if sorted(left_files) != sorted(right_files):
        return False
    for name, path in left_files.items():
        with fileio.open(path, "rb") as a, fileio.open(right_files[name], "rb") as b:
            if a.read() != b.read():
                return False
    return True


def atomic_copy_model(model_path: str, base_directory: str) -> str:
    """Copies a SavedModel to ``<base>/<version>`` via a rename; returns the path.

    When the newest version already holds this exact model, returns that path,
    writing its completion marker if missing: a push killed between the rename
    and the marker left a whole version without it, and the rerun, which finds
    the same model there, must finish that push rather than trust it as is.
    """
    newest = newest_version(base_directory)
    if newest and identical_trees(model_path, newest):
        marker = os.path.join(newest, PUSH_COMPLETE_FILE)
        if not fileio.exists(marker):
            io_utils.write_string_file(marker, "")
        return newest
    fileio.makedirs(base_directory)
    version = next_version(base_directory)
    staging = os.path.join(base_directory, STAGING_PREFIX + version)
    if fileio.exists(staging):
        fileio.rmtree(staging)
    io_utils.copy_dir(model_path, staging)
    final = os.path.join(base_directory, version)
    fileio.rename(staging, final)
    io_utils.write_string_file(os.path.join(final, PUSH_COMPLETE_FILE), "")
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
