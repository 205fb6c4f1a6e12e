"""``components.tfx_api.tfx`` is ``tfx.v1`` for every name this project uses, without its imports."""
import subprocess
import sys
from types import SimpleNamespace

from tfx import v1

from components.tfx_api import tfx


def _names(namespace, prefix=""):
    """Dotted names of the leaves of the namespace (modules count as leaves)."""
    for name, value in vars(namespace).items():
        if isinstance(value, SimpleNamespace):
            yield from _names(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _has(root, dotted):
    try:
        _lookup(root, dotted)
    except AttributeError:
        return False
    return True


def _lookup(root, dotted):
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


def test_every_name_is_the_object_tfx_v1_exports():
    names = dict(_names(tfx))
    assert len(names) > 40
    for dotted, value in names.items():
        if dotted in ("types.standard_artifacts", "dsl.io.fileio"):
            continue  # modules: their members are checked below
        if dotted.startswith(("proto.", "components.")) and not _has(v1, dotted):
            continue  # a class of the same modules that tfx.v1 does not re-export
        assert _lookup(v1, dotted) is value, dotted
    for name in dir(v1.components):  # every component class (not the trainer's helper types)
        if isinstance(getattr(v1.components, name), type) and issubclass(
                getattr(v1.components, name), v1.types.BaseComponent):
            assert getattr(tfx.components, name) is getattr(v1.components, name), name
    for name in dir(v1.types.standard_artifacts):
        if not name.startswith("_"):
            assert getattr(tfx.types.standard_artifacts, name) is getattr(v1.types.standard_artifacts, name)
    assert tfx.dsl.io.fileio.exists is v1.dsl.io.fileio.exists


def test_every_proto_name_the_project_uses_is_there():
    from components.tfx_api import _PROTO_MODULES
    for name in dir(v1.proto):
        value = getattr(v1.proto, name)
        if isinstance(value, type) and any(getattr(m, name, None) is value for m in _PROTO_MODULES):
            assert getattr(tfx.proto, name) is value, name
    for name in ("Input", "Output", "SplitConfig", "RangeConfig", "StaticRange", "RollingRange",
                 "TrainArgs", "EvalArgs", "ServingSpec", "ValidationSpec", "RequestSpec",
                 "TensorFlowServing", "TensorFlowServingRequestSpec", "LocalDockerConfig",
                 "KubernetesConfig", "PushDestination", "TuneArgs"):
        assert getattr(tfx.proto, name) is getattr(v1.proto, name), name


def test_the_pipeline_builds_without_importing_tfx_v1():
    """The point of the module: a local run never pays for ``tfx.v1``'s package import."""
    code = ("import sys\n"
            "from common.loader import load_config\n"
            "from pipeline.local_runner import build_local_pipeline\n"
            "import components.anomalies_gate\n"
            "build_local_pipeline(load_config('configs/taxi.yaml'))\n"
            "print(sorted(m for m in sys.modules if m == 'tfx.v1' or m.startswith('tfx.v1.')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
