"""SIGKILL a pipeline run while one component executes, then check what it left.

Shared by ``bench/kill_rerun.py`` (every component, compared with an
uninterrupted run) and the e2e crash test (the Trainer and the Pusher).

When a component starts is read from the filesystem, not from ML Metadata:
TFX's launcher registers the execution (RUNNING) in ML Metadata, then creates
``<pipeline_root>/<node>/<output key>/<execution id>/`` and calls the
executor, so a new execution directory means the executor is starting. Polling
the SQLite store instead would take read locks on the database the run writes,
and a writer that meets a reader's lock fails with "database is locked": the
probe would itself break runs. The Pusher's copy takes milliseconds, too short
to catch its staging directory from another process on a loaded machine: it is
killed as its executor starts, and ``tests/components/test_pusher_kill.py``
kills a push before its rename and before its marker from inside.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Set

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from common.paths import REPO_ROOT
from components.pusher import STAGING_PREFIX

# Taxi runs kept small (no Tuner, no edge exports), with any AUC change against the
# served model allowed: a rerun is pushed whatever a few steps give, so the Pusher has work.
FAST_TAXI = ["tuner.enabled=false", "tuner.reuse_last=false", "serving.edge_exports=false",
             "evaluation.max_auc_regression=1.0"]
POLL_S = 0.005
RUN_TIMEOUT_S = 1800


def served_digest(push_dir: str) -> Dict[str, str]:
    """sha256 of every file under the numeric version directories: what TF Serving loads."""
    digest = {}
    if not os.path.isdir(push_dir):
        return digest
    for version in sorted(n for n in os.listdir(push_dir) if n.isdigit()):
        for directory, _, names in os.walk(os.path.join(push_dir, version)):
            for name in names:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    digest[os.path.relpath(path, push_dir)] = hashlib.sha256(f.read()).hexdigest()
    return digest


def staging_left(push_dir: str) -> List[str]:
    """Staging copies a killed push left (TF Serving ignores them: not a number)."""
    return sorted(n for n in os.listdir(push_dir) if n.startswith(STAGING_PREFIX)) if os.path.isdir(push_dir) else []


def _execution_dirs(pipeline_root: str, node: str) -> Set[str]:
    """``<output key>/<execution id>`` directories the node's executions created so far."""
    node_dir = os.path.join(pipeline_root, node)
    if not os.path.isdir(node_dir):
        return set()
    return {os.path.join(key, ex) for key in os.listdir(node_dir) if os.path.isdir(os.path.join(node_dir, key))
            for ex in os.listdir(os.path.join(node_dir, key))}


def execution_starts(pipeline_root: str, node: str) -> Callable[[], bool]:
    """A trigger: true once ``node`` has an execution directory it had not when this was called."""
    before = _execution_dirs(pipeline_root, node)
    return lambda: bool(_execution_dirs(pipeline_root, node) - before)


def run_command(config: str, overrides: List[str]) -> List[str]:
    args = [sys.executable, "-m", "pipeline", "run", "--config", config]
    for override in overrides:
        args += ["--set", override]
    return args


def _env() -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=REPO_ROOT, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
                PYTHONHASHSEED="0")


def run_to_end(command: List[str], log_path: str) -> int:
    """Runs the pipeline to its end; its exit code."""
    with open(log_path, "ab") as log:
        return subprocess.run(command, cwd=REPO_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                              timeout=RUN_TIMEOUT_S).returncode


@dataclass
class Kill:
    killed: bool  # False: the run ended before the trigger fired
    exit_code: Optional[int]  # the run's code when it was not killed
    seconds: float  # from start to kill (or end)


def run_and_kill(command: List[str], trigger: Callable[[], bool], log_path: str,
                 delay_s: float = 0.0) -> Kill:
    """Starts the run in its own process group; SIGKILLs the whole group
    ``delay_s`` after ``trigger`` turns true (Beam workers and the model server too)."""
    start = time.time()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        while proc.poll() is None and not trigger():
            if time.time() - start > RUN_TIMEOUT_S:
                raise TimeoutError(f"{' '.join(command)}: no trigger within {RUN_TIMEOUT_S}s")
            time.sleep(POLL_S)
        if proc.poll() is not None:
            return Kill(False, proc.returncode, time.time() - start)
        time.sleep(delay_s)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return Kill(True, None, time.time() - start)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def node_states(metadata_path: str, pipeline_name: str, node: str) -> List[str]:
    """Opens ML Metadata with the local runner's connection config (as the rerun will)
    and lists the states of ``node``'s executions, oldest first; raises when it does not open."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path))
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node}")
    if context is None:
        return []
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    return [metadata_store_pb2.Execution.State.Name(e.last_known_state) for e in executions]


def restore(snapshot: str, root: str) -> None:
    """``root`` becomes a copy of ``snapshot`` (same path: the store's artifact URIs hold)."""
    if os.path.exists(root):
        shutil.rmtree(root)
    shutil.copytree(snapshot, root, symlinks=True)


KILL_DELAY_S = 2.0  # after the execution directory appears: the executor is at work


def versions_of(digest: Dict[str, str]) -> Set[str]:
    """The version names a ``served_digest`` covers."""
    return {relative.split("/")[0] for relative in digest}


@dataclass
class KillCheck:
    """What a run killed in ``node`` left behind.

    ``previous_untouched``: every version served before the run is byte for byte
    the same. ``published``: versions the killed run added. Only a run killed in
    the Pusher after its rename can add one, and then a whole version of the
    model it was pushing (the filesystem and ML Metadata share no transaction: a
    kill between the rename and the launcher's commit leaves the push done but
    unrecorded; the rerun finds that model there and records the same version).
    """
    node: str
    kill: Kill
    states: List[str]  # the node's executions in ML Metadata after the kill, oldest first
    previous_untouched: bool
    published: List[str]
    staging: List[str]


def kill_in(node: str, command: List[str], pipeline_root: str, metadata_path: str, pipeline_name: str,
            push_dir: str, log_path: str) -> KillCheck:
    """Runs ``command``, SIGKILLs it while ``node`` executes, and checks ML Metadata
    opens and the served versions are byte for byte what they were."""
    before = served_digest(push_dir)
    # The Pusher's whole copy takes well under a second: it is killed as its executor starts.
    delay = 0.0 if node == "Pusher" else KILL_DELAY_S
    trigger = execution_starts(pipeline_root, node)
    kill = run_and_kill(command, trigger, log_path, delay)
    after = served_digest(push_dir)
    old = versions_of(before)
    return KillCheck(node, kill, node_states(metadata_path, pipeline_name, node),
                     {k: v for k, v in after.items() if k.split("/")[0] in old} == before,
                     sorted(versions_of(after) - old), staging_left(push_dir))
