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

A version is self-contained: what the gateway needs beside the SavedModel is
copied into the same staging directory before the rename. For LIAR that is the
ClaimNeighbours index (an optional ``claim_index`` input, placed at
``assets.extra/claim_index``, ``common.serving_contract``), from which the
gateway makes a request's claim-neighbour record (``serving.claim_records``).
TFX's Pusher takes no such input, so ``AtomicPusher`` is its spec plus one
optional channel, with this executor.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from tfx import types
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, json_utils, proto_utils

from common.serving_contract import CLAIM_INDEX_DIR, EDGE_DIR
from components.claim_record import ClaimIndex

PUSH_COMPLETE_FILE = "PUSH_COMPLETE"  # written last into a version: the push finished
STAGING_PREFIX = ".staging-"
CLAIM_INDEX_KEY = "claim_index"  # the Pusher's optional input: LIAR's ClaimIndex
# Where the claim index goes inside a pushed version (relative to the version).
CLAIM_INDEX_PATH = f"{EDGE_DIR}/{CLAIM_INDEX_DIR}"


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


def _tree(root: str, extras: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Relative path -> full path of the files of ``root`` with each ``extras``
    directory placed at its relative path (the version a push would write)."""
    files = dict(_files(root))
    for relative, source in (extras or {}).items():
        files.update((f"{relative}/{name}", path) for name, path in _files(source))
    return files


def identical_trees(left: str, right: str, left_extras: Optional[Mapping[str, str]] = None) -> bool:
    """Same relative file names with the same bytes under both directories
    (the completion marker aside); ``left_extras`` as in ``atomic_copy_model``."""
    left_files, right_files = _tree(left, left_extras), dict(_files(right))
    if sorted(left_files) != sorted(right_files):
        return False
    for name, path in left_files.items():
        with fileio.open(path, "rb") as a, fileio.open(right_files[name], "rb") as b:
            if a.read() != b.read():
                return False
    return True


def copy_version(model_path: str, destination: str, extras: Optional[Mapping[str, str]] = None) -> None:
    """The SavedModel, and each ``extras`` directory at its relative path, into ``destination``."""
    io_utils.copy_dir(model_path, destination)
    for relative, source in (extras or {}).items():
        io_utils.copy_dir(source, f"{destination.rstrip('/')}/{relative}")


def atomic_copy_model(model_path: str, base_directory: str,
                      extras: Optional[Mapping[str, str]] = None) -> str:
    """Copies a SavedModel to ``<base>/<version>`` via a rename; returns the path.
    ``extras``: path inside the version -> a directory copied there too (before the rename).

    When the newest version already holds this exact model (and extras), returns that path,
    writing its completion marker if missing: a push killed between the rename
    and the marker left a whole version without it, and the rerun, which finds
    the same model there, must finish that push rather than trust it as is.
    """
    newest = newest_version(base_directory)
    if newest and identical_trees(model_path, newest, extras):
        marker = os.path.join(newest, PUSH_COMPLETE_FILE)
        if not fileio.exists(marker):
            io_utils.write_string_file(marker, "")
        return newest
    fileio.makedirs(base_directory)
    version = next_version(base_directory)
    staging = os.path.join(base_directory, STAGING_PREFIX + version)
    if fileio.exists(staging):
        fileio.rmtree(staging)
    copy_version(model_path, staging, extras)
    final = os.path.join(base_directory, version)
    fileio.rename(staging, final)
    io_utils.write_string_file(os.path.join(final, PUSH_COMPLETE_FILE), "")
    return final


class PushBlessing(standard_artifacts.ModelBlessing):
    """A ModelBlessing that only a completed push writes: ``blessed = 1`` and the pushed
    model's id (``current_model_id``), so TFX's LatestBlessedModelStrategy over this type
    resolves the latest pushed model (components.evaluation's baseline), never a model
    the Evaluator blessed in a run that was stopped before its push."""
    TYPE_NAME = "components.PushBlessing"


PUSH_BLESSING_KEY = "push_blessing"


def mark_push_blessing(blessing: types.Artifact, model: Optional[types.Artifact]) -> None:
    """``blessed`` 1 with the model (pushed) or 0 (not pushed), as the Evaluator writes its own."""
    blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY, int(model is not None))
    if model is not None:
        blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
        blessing.set_string_custom_property(evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                            model.uri)


class AtomicPushExecutor(pusher_executor.Executor):
    """TFX's Pusher executor with an atomic filesystem push (and the push blessing, last)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        push_blessing = artifact_utils.get_single_instance(output_dict[PUSH_BLESSING_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            mark_push_blessing(push_blessing, None)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        model_path = self.GetModelPath(input_dict)
        extras = {CLAIM_INDEX_PATH: index.uri for index in input_dict.get(CLAIM_INDEX_KEY) or []}
        serving_path = atomic_copy_model(model_path, destination.filesystem.base_directory, extras)
        copy_version(model_path, model_push.uri, extras)
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=os.path.basename(serving_path))
        mark_push_blessing(push_blessing, artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_KEY]))


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    """TFX's Pusher spec with the optional ClaimIndex to push with the model."""
    INPUTS = {**standard_component_specs.PusherSpec.INPUTS,
              CLAIM_INDEX_KEY: ChannelParameter(type=ClaimIndex, optional=True)}
    OUTPUTS = {**standard_component_specs.PusherSpec.OUTPUTS,
               PUSH_BLESSING_KEY: ChannelParameter(type=PushBlessing)}


class AtomicPusher(base_component.BaseComponent):
    """TFX's Pusher (same inputs, outputs and blessings checks) with the atomic executor
    and an optional ``claim_index`` pushed inside the version."""
    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 infra_blessing: types.BaseChannel, push_destination: pusher_pb2.PushDestination,
                 claim_index: Optional[types.BaseChannel] = None) -> None:
        super().__init__(spec=AtomicPusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
            claim_index=claim_index, push_destination=push_destination,
            custom_config=json_utils.dumps(None),
            pushed_model=channel.Channel(type=standard_artifacts.PushedModel),
            push_blessing=channel.Channel(type=PushBlessing)))


def build_pusher(model, model_blessing, infra_blessing, push_dir: str,
                 claim_index: Optional[types.BaseChannel] = None) -> AtomicPusher:
    """A Pusher that needs both blessings and writes ``<push_dir>/<version>`` atomically,
    with the claim index inside when given (node id "Pusher", as TFX's)."""
    return AtomicPusher(
        model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=push_dir)),
        claim_index=claim_index).with_id("Pusher")
