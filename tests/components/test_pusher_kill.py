"""A push SIGKILLed at each step, then pushed again: TF Serving's directory only ever
holds complete versions, and the rerun finishes what the killed push began.

The push runs in a child process that kills itself (SIGKILL: no cleanup, no
``finally``) just before one step of ``atomic_copy_model``: the rename of the
staging copy into place, or the completion marker.
"""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from common.paths import REPO_ROOT
from components.pusher import PUSH_COMPLETE_FILE, STAGING_PREFIX, atomic_copy_model

pytestmark = pytest.mark.integration  # each push starts a Python process that imports TFX

KILL_BEFORE = {  # step name -> the attribute of components.pusher replaced by a suicide
    "rename": "fileio.rename",
    "marker": "io_utils.write_string_file",
}


def _model(directory) -> str:
    (directory / "variables").mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"graph")
    (directory / "variables" / "variables.index").write_bytes(b"index")
    return str(directory)


def _push_killed_before(step: str, model: str, base: str) -> None:
    owner, name = KILL_BEFORE[step].split(".")
    script = textwrap.dedent(f"""
        import os, signal
        from components import pusher
        setattr(getattr(pusher, {owner!r}), {name!r},
                lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL))
        pusher.atomic_copy_model({model!r}, {base!r})
    """)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    code = subprocess.run([sys.executable, "-c", script], env=env, timeout=120).returncode
    assert code == -signal.SIGKILL, f"the push was to die before its {step}, but exited {code}"


def _versions(base: str):
    return sorted(n for n in os.listdir(base) if n.isdigit())


@pytest.mark.parametrize("step", sorted(KILL_BEFORE))
def test_a_push_killed_midway_is_completed_by_the_rerun(tmp_path, step):
    base = str(tmp_path / "serving")
    served = atomic_copy_model(_model(tmp_path / "old"), base)
    new_model = _model(tmp_path / "new")
    (tmp_path / "new" / "saved_model.pb").write_bytes(b"graph, retrained")

    _push_killed_before(step, new_model, base)
    if step == "rename":  # the copy sits in staging, which TF Serving ignores
        assert _versions(base) == [os.path.basename(served)]
        assert any(n.startswith(STAGING_PREFIX) for n in os.listdir(base))
    else:  # renamed: a whole version, only its marker missing
        assert len(_versions(base)) == 2
        assert not os.path.exists(os.path.join(base, _versions(base)[-1], PUSH_COMPLETE_FILE))

    pushed = atomic_copy_model(new_model, base)
    assert os.path.basename(pushed) == _versions(base)[-1]
    assert os.path.isfile(os.path.join(pushed, PUSH_COMPLETE_FILE))
    assert open(os.path.join(pushed, "saved_model.pb"), "rb").read() == b"graph, retrained"
    assert len(_versions(base)) == 2  # the killed push's version is reused, not duplicated
    assert os.path.isfile(os.path.join(served, PUSH_COMPLETE_FILE))  # the old version untouched
