"""The atomic push through TFX's fileio, onto a fake remote filesystem.

``fake://`` is a filesystem plugin registered with TFX's registry and stored
in a temporary directory. Like an object store (GCS, S3) it lists directories
with a trailing slash, needs no parent directories, and renames a directory by
copying every file and deleting the source.
"""
import os
import shutil

import pytest
from tfx.dsl.io import filesystem, filesystem_registry
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.claim_record import ClaimIndex
from components.pusher import (
    CLAIM_INDEX_KEY,
    CLAIM_INDEX_PATH,
    PUSH_BLESSING_KEY,
    PUSH_COMPLETE_FILE,
    AtomicPushExecutor,
    PushBlessing,
    atomic_copy_model,
    build_pusher,
    next_version,
)

SCHEME = "fake://"


class FakeRemoteFilesystem(filesystem.Filesystem):
    """``fake://<path>`` stored under ``root`` (set per test)."""
    SUPPORTED_SCHEMES = [SCHEME]
    root = ""

    @classmethod
    def local(cls, path) -> str:
        path = path.decode() if isinstance(path, bytes) else path
        assert path.startswith(SCHEME), path
        return os.path.join(cls.root, path[len(SCHEME):])

    @classmethod
    def remote(cls, local_path: str) -> str:
        return SCHEME + os.path.relpath(local_path, cls.root)

    @classmethod
    def open(cls, name, mode="r"):
        if "w" in mode or "a" in mode:
            os.makedirs(os.path.dirname(cls.local(name)), exist_ok=True)  # objects need no parents
        try:
            return open(cls.local(name), mode)
        except FileNotFoundError as e:
            raise filesystem.NotFoundError() from e

    @classmethod
    def copy(cls, src, dst, overwrite=False):
        if not overwrite and os.path.exists(cls.local(dst)):
            raise OSError(f"{dst} exists")
        os.makedirs(os.path.dirname(cls.local(dst)), exist_ok=True)
        shutil.copyfile(cls.local(src), cls.local(dst))

    @classmethod
    def exists(cls, path):
        return os.path.exists(cls.local(path))

    @classmethod
    def glob(cls, pattern):
        import glob
        return [cls.remote(p) for p in glob.glob(cls.local(pattern))]

    @classmethod
    def isdir(cls, path):
        return os.path.isdir(cls.local(path))

    @classmethod
    def listdir(cls, path):
        local = cls.local(path)
        return [n + "/" if os.path.isdir(os.path.join(local, n)) else n for n in os.listdir(local)]

    @classmethod
    def makedirs(cls, path):
        os.makedirs(cls.local(path), exist_ok=True)

    @classmethod
    def mkdir(cls, path):
        os.mkdir(cls.local(path))

    @classmethod
    def remove(cls, path):
        os.remove(cls.local(path))

    @classmethod
    def rename(cls, src, dst, overwrite=False):
        source, target = cls.local(src), cls.local(dst)
        if os.path.exists(target) and not overwrite:
            raise OSError(f"{dst} exists")
        if os.path.isdir(source):  # an object store: copy each object, then delete the source
            shutil.copytree(source, target)
            shutil.rmtree(source)
        else:
            os.replace(source, target)

    @classmethod
    def rmtree(cls, path):
        shutil.rmtree(cls.local(path))

    @classmethod
    def stat(cls, path):
        return os.stat(cls.local(path))

    @classmethod
    def walk(cls, top, topdown=True, onerror=None):
        for directory, dirs, files in os.walk(cls.local(top), topdown=topdown, onerror=onerror):
            yield cls.remote(directory), dirs, files


filesystem_registry.DEFAULT_FILESYSTEM_REGISTRY.register(FakeRemoteFilesystem, priority=0)


@pytest.fixture
def bucket(tmp_path, monkeypatch):
    """The fake filesystem's storage, and a working directory that must stay empty."""
    storage = tmp_path / "bucket"
    storage.mkdir()
    monkeypatch.setattr(FakeRemoteFilesystem, "root", str(storage))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return storage, cwd


def _model(tmp_path, content=b"pb"):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True, exist_ok=True)
    (model / "saved_model.pb").write_bytes(content)
    (model / "variables" / "variables.index").write_bytes(b"index")
    (model / "assets.extra").mkdir(exist_ok=True)
    (model / "assets.extra" / "model.tflite").write_bytes(b"tflite")
    return str(model)


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_remote_push_has_the_local_layout_and_no_local_folder(tmp_path, bucket):
    storage, cwd = bucket
    model = _model(tmp_path)
    local = atomic_copy_model(model, str(tmp_path / "local" / "taxi"))
    remote = atomic_copy_model(model, "fake://models/taxi")
    assert remote.startswith("fake://models/taxi/") and os.path.basename(remote).isdigit()
    assert _tree(FakeRemoteFilesystem.local(remote)) == _tree(local) == sorted(
        _tree(model) + [PUSH_COMPLETE_FILE])
    assert os.listdir(storage / "models" / "taxi") == [os.path.basename(remote)]  # no staging left
    assert os.listdir(cwd) == [] and not os.path.exists(os.path.join(os.getcwd(), "fake:"))


def test_remote_push_adds_versions_only_for_a_new_model(tmp_path, bucket):
    storage, _ = bucket
    model = _model(tmp_path)
    first = atomic_copy_model(model, "fake://models/taxi")
    assert atomic_copy_model(model, "fake://models/taxi") == first  # a rerun: no duplicate version
    _model(tmp_path, content=b"pb2")
    second = atomic_copy_model(model, "fake://models/taxi")
    assert int(os.path.basename(second)) > int(os.path.basename(first))
    assert sorted(os.listdir(storage / "models" / "taxi")) == sorted(
        [os.path.basename(first), os.path.basename(second)])
    assert (storage / "models" / "taxi" / os.path.basename(first) / "saved_model.pb").read_bytes() == b"pb"


def test_a_leftover_staging_directory_is_replaced(tmp_path, bucket):
    """A push that died before its rename left a staging copy; TF Serving never saw it."""
    storage, _ = bucket
    stale = storage / "models" / "taxi" / ".staging-1"
    stale.mkdir(parents=True)
    (stale / "half.pb").write_bytes(b"half")
    pushed = atomic_copy_model(_model(tmp_path), "fake://models/taxi")
    assert (storage / "models" / "taxi" / os.path.basename(pushed) / PUSH_COMPLETE_FILE).exists()
    assert "half.pb" not in _tree(FakeRemoteFilesystem.local(pushed))


def _execute_push(tmp_path, base_directory, **inputs):
    """AtomicPushExecutor on a blessed fake model (and ``inputs``); returns the PushedModel."""
    model = standard_artifacts.Model()
    model.uri = os.path.dirname(_model(tmp_path))
    os.rename(os.path.join(model.uri, "model"), os.path.join(model.uri, "Format-Serving"))
    blessings = []
    for blessing in (standard_artifacts.ModelBlessing(), standard_artifacts.InfraBlessing()):
        blessing.set_int_custom_property("blessed", 1)
        blessings.append(blessing)
    model.id = 41
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    push_blessing = PushBlessing()
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base_directory))
    AtomicPushExecutor().Do(
        {standard_component_specs.MODEL_KEY: [model],
         standard_component_specs.MODEL_BLESSING_KEY: [blessings[0]],
         standard_component_specs.INFRA_BLESSING_KEY: [blessings[1]], **inputs},
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed], PUSH_BLESSING_KEY: [push_blessing]},
        {standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
    # the push blessing names the pushed model (the next run's baseline, components.evaluation)
    assert push_blessing.get_int_custom_property("blessed") == 1
    assert push_blessing.get_int_custom_property("current_model_id") == 41
    return pushed


def test_the_pusher_executor_pushes_to_the_remote_directory(tmp_path, bucket):
    storage, cwd = bucket
    pushed = _execute_push(tmp_path, "fake://models/taxi")
    assert pushed.get_int_custom_property("pushed") == 1
    destination_path = pushed.get_string_custom_property("pushed_destination")
    assert destination_path.startswith("fake://models/taxi/")
    version = pushed.get_string_custom_property("pushed_version")
    assert (storage / "models" / "taxi" / version / "saved_model.pb").read_bytes() == b"pb"
    assert os.listdir(cwd) == []


def _index(tmp_path, content=b"npz"):
    index = tmp_path / "claim_index"
    index.mkdir(exist_ok=True)
    (index / "index.npz").write_bytes(content)
    (index / "params.json").write_text("{}")
    return str(index)


def test_the_claim_index_is_pushed_inside_the_version_and_makes_it_new(tmp_path, bucket):
    storage, _ = bucket
    model, index = _model(tmp_path), _index(tmp_path)
    first = atomic_copy_model(model, "fake://models/liar", {CLAIM_INDEX_PATH: index})
    version = storage / "models" / "liar" / os.path.basename(first)
    assert CLAIM_INDEX_PATH == "assets.extra/claim_index"
    assert _tree(str(version)) == sorted(_tree(model) + [PUSH_COMPLETE_FILE, f"{CLAIM_INDEX_PATH}/index.npz",
                                                         f"{CLAIM_INDEX_PATH}/params.json"])
    assert atomic_copy_model(model, "fake://models/liar", {CLAIM_INDEX_PATH: index}) == first  # a rerun
    # the same model with another index (or none) is another version: a version is self-contained
    _index(tmp_path, content=b"npz2")
    second = atomic_copy_model(model, "fake://models/liar", {CLAIM_INDEX_PATH: index})
    assert second != first and (version / CLAIM_INDEX_PATH / "index.npz").read_bytes() == b"npz"
    assert atomic_copy_model(model, "fake://models/liar") not in (first, second)


def test_the_pusher_executor_pushes_the_claim_index_with_the_model(tmp_path):
    index = ClaimIndex()
    index.uri = _index(tmp_path)
    pushed = _execute_push(tmp_path, str(tmp_path / "serving"), **{CLAIM_INDEX_KEY: [index]})
    served = pushed.get_string_custom_property("pushed_destination")
    for root in (served, pushed.uri):  # the serving version and the PushedModel artifact
        assert open(os.path.join(root, CLAIM_INDEX_PATH, "index.npz"), "rb").read() == b"npz"


def test_the_pusher_keeps_tfx_node_id_and_takes_the_index_only_when_given():
    from tfx import types as tfx_types
    from tfx.types import standard_artifacts as artifacts

    channels = [tfx_types.Channel(type=t) for t in (artifacts.Model, artifacts.ModelBlessing,
                                                    artifacts.InfraBlessing)]
    without = build_pusher(*channels, "/tmp/serving")
    assert without.id == "Pusher" and CLAIM_INDEX_KEY not in without.inputs
    with_index = build_pusher(*channels, "/tmp/serving", tfx_types.Channel(type=ClaimIndex))
    assert with_index.inputs[CLAIM_INDEX_KEY].type is ClaimIndex


def test_atomic_push_keeps_versions_and_leaves_no_staging(tmp_path):
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"pb")
    base = str(tmp_path / "serving" / "taxi")
    first = atomic_copy_model(str(model), base)
    assert atomic_copy_model(str(model), base) == first  # same model again: no duplicate version
    (model / "saved_model.pb").write_bytes(b"pb2")
    second = atomic_copy_model(str(model), base)
    assert int(os.path.basename(second)) > int(os.path.basename(first))
    assert sorted(os.listdir(base)) == sorted([os.path.basename(first), os.path.basename(second)])
    assert (tmp_path / "serving" / "taxi" / os.path.basename(first) / "saved_model.pb").read_bytes() == b"pb"
    assert (tmp_path / "serving" / "taxi" / os.path.basename(second) / "saved_model.pb").read_bytes() == b"pb2"
    assert int(next_version(base)) > int(os.path.basename(second))
