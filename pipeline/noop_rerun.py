"""Is a rerun a no-op? Decided from fingerprints, before TF, TFX or Beam is imported.

Why: with nothing changed, ``python -m pipeline run`` reuses every cached
execution, but only after importing TF, TFX, Beam and TFMA and building the
DAG: half a minute of wall time to learn that there was nothing to do. Here
the last SUCCESSFUL run records what it read, and the next run compares:

- the resolved config as the components read it (after ``extends`` and
  ``--set``), the ``--no-tune`` choice and the resolved data directory;
- our code: every file (not only ``.py``) of the packages the DAG's executors
  import (``CODE_PACKAGES``, wherever Python finds them), by content;
- the curated schema, by content;
- the data: every file and directory under the data directory (ExampleGen's
  patterns and span directories all live there), by size, mtime and ctime
  (a write changes ctime even when mtime is put back, e.g. by ``cp -p``);
- the installed distributions (names and versions) and the Python version;
- ML Metadata: the store and pipeline root still exist, the recorded run is
  the newest execution of the store (no run, failed or not, came after it),
  and every artifact that run read or wrote is still on disk.

Any difference, anything unreadable, a missing record: the run executes as
usual. A wrong "nothing to do" is worse than a slow rerun, so every doubt
counts as a change. The record is written only after a run succeeded (by
``os.replace``, so it is whole or absent) and removed before a run executes,
so an interrupted or failed run never leaves an earlier record standing.

Not inputs: the run's own directories (run_dir, push_dir), ``__pycache__``,
compiled files and docs (``*.md``).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from common.config import PipelineConfig, to_dict
from common.paths import resolve_path
from pipeline.run_paths import LocalPaths, config_arg, local_paths

# Our packages the DAG's executors can import (common < trainer < edge < serving <
# monitoring < components < pipeline: every floor up to the pipeline's own).
CODE_PACKAGES = ("common", "trainer", "edge", "serving", "monitoring", "components", "pipeline")
RECORD_VERSION = 1
# tool caches (a `ruff check .` writes .ruff_cache/ into every package with a ruff.toml)
_NOT_INPUT_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints"}
_NOT_INPUT_SUFFIXES = (".pyc", ".pyo", ".md")
_SHOWN = 5  # changed names listed per kind
UNFINGERPRINTED = "<not fingerprinted>"
_UNREADABLE = "unreadable: "
# Data files up to this size are hashed too (the taxi CSV: 2 MB, about 5 ms); larger
# ones by size, mtime and ctime only, as TFX's own ExampleGen fingerprint does.
HASH_LIMIT = 64 * 1024 * 1024


@dataclass
class Decision:
    """``changes`` empty: nothing would execute; ``record``: the last successful run's."""
    fingerprint: Dict[str, Any]
    changes: List[str] = field(default_factory=list)
    record: Optional[Dict[str, Any]] = None

    @property
    def nothing_to_do(self) -> bool:
        return not self.changes


# --- fingerprints ---------------------------------------------------------------------------

def fingerprint(cfg: PipelineConfig, tune: Optional[bool],
                code_dirs: Optional[Mapping[str, Sequence[str]]] = None) -> Dict[str, Any]:
    """Everything a run reads, as comparable JSON-safe values. ``code_dirs``: package ->
    directories, by default where Python imports ``CODE_PACKAGES`` from."""
    paths = local_paths(cfg)
    data_dir = cfg.data_path
    return {
        "config": to_dict(cfg),
        "run": {"tune": cfg.tuner.enabled if tune is None else bool(tune), "data_dir": data_dir},
        "code": code_files(package_dirs() if code_dirs is None else code_dirs),
        "schema": _file_digest(cfg.schema_path),
        "data": data_files(data_dir, exclude=(paths.root, resolve_path(cfg.serving.push_dir))),
        "environment": environment(),
    }


def code_files(code_dirs: Mapping[str, Sequence[str]]) -> Dict[str, str]:
    """``<package>/<path>`` -> SHA-256 of every file of the packages' directories
    (a package found nowhere is unreadable: a change)."""
    digests: Dict[str, str] = {}
    for package, roots in sorted(code_dirs.items()):
        if not roots:
            digests[package] = f"{_UNREADABLE}package {package!r} not found"
        for root in roots:
            for path in _walk_files(root):
                rel = os.path.join(package, os.path.relpath(path, root))
                digests[rel] = _file_digest(path)
    return digests


def package_dirs(packages: Sequence[str] = CODE_PACKAGES) -> Dict[str, List[str]]:
    """Package -> the directories ``import <package>`` reads (found without importing it)."""
    found = {}
    for package in packages:
        spec = importlib.util.find_spec(package)
        found[package] = sorted(set(spec.submodule_search_locations or ())) if spec else []
    return found


def data_files(data_dir: str, exclude: Sequence[str] = (), hash_limit: int = HASH_LIMIT) -> Dict[str, Any]:
    """Relative path -> [size, mtime_ns, ctime_ns, SHA-256 of files up to ``hash_limit``
    bytes] of every file under ``data_dir`` (two writes of the same size within one
    clock tick keep mtime and ctime; the digest still differs), and
    ``"dir"`` for every directory (a new, still empty span directory counts too).
    A data path that is no local directory (a ``gs://`` URI, a missing directory)
    gives ``{UNFINGERPRINTED: <why>}``, which ``decide`` always counts as a change."""
    if "://" in data_dir:
        return {UNFINGERPRINTED: f"data path {data_dir} is not local: its files are not fingerprinted"}
    if not os.path.isdir(data_dir):
        return {UNFINGERPRINTED: f"data path {data_dir} is not a directory"}
    seen = {os.path.realpath(p) for p in exclude}  # and every directory walked (symlink loops)
    seen.add(os.path.realpath(data_dir))
    entries: Dict[str, Any] = {}
    for directory, dirs, files in os.walk(data_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(directory, d)) not in seen)
        seen.update(os.path.realpath(os.path.join(directory, d)) for d in dirs)
        for d in dirs:
            entries[os.path.relpath(os.path.join(directory, d), data_dir)] = "dir"
        for name in sorted(files):
            path = os.path.join(directory, name)
            st = os.stat(path)
            digest = _file_digest(path) if st.st_size <= hash_limit else ""
            entries[os.path.relpath(path, data_dir)] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest]
    return entries


def environment() -> Dict[str, Any]:
    """The Python version and every installed distribution's name and version."""
    dists = set()
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")) and os.path.isdir(entry):
            dists.update(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info")))
    return {"python": sys.version, "executable": sys.executable,
            "distributions": hashlib.sha256("\n".join(sorted(dists)).encode()).hexdigest()}


def _walk_files(root: str):
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_INPUT_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith(_NOT_INPUT_SUFFIXES):
                yield os.path.join(directory, name)


def _file_digest(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        return f"{_UNREADABLE}{e}"


# --- ML Metadata, read with sqlite3 (ml_metadata would cost an import of its protos) ----------

def metadata_state(metadata_path: str, pipeline_name: str) -> Dict[str, Any]:
    """The newest run of ``pipeline_name`` in the store: its run id, the newest execution id
    of the whole store, and the local URIs of every artifact the run read or wrote."""
    db = sqlite3.connect(f"file:{metadata_path}?mode=ro", uri=True)
    try:
        newest = db.execute(
            "SELECT MAX(a.execution_id) FROM Association a JOIN Context c ON c.id = a.context_id "
            "JOIN Type t ON t.id = c.type_id WHERE t.name = 'pipeline' AND c.name = ?",
            (pipeline_name,)).fetchone()[0]
        if newest is None:
            raise LookupError(f"no execution of pipeline {pipeline_name!r}")
        run = db.execute(
            "SELECT c.id, c.name FROM Association a JOIN Context c ON c.id = a.context_id "
            "JOIN Type t ON t.id = c.type_id WHERE t.name = 'pipeline_run' AND a.execution_id = ?",
            (newest,)).fetchone()
        if run is None:
            raise LookupError(f"execution {newest} belongs to no pipeline_run context")
        uris = [row[0] for row in db.execute(
            "SELECT DISTINCT ar.uri FROM Association a JOIN Event ev ON ev.execution_id = a.execution_id "
            "JOIN Artifact ar ON ar.id = ev.artifact_id WHERE a.context_id = ? ORDER BY ar.uri",
            (run[0],))]
        last_execution = db.execute("SELECT MAX(id) FROM Execution").fetchone()[0]
    finally:
        db.close()
    return {"run_id": run[1], "last_execution_id": last_execution,
            "artifact_uris": [u for u in uris if u and "://" not in u]}


def metadata_changes(paths: LocalPaths, pipeline_name: str, recorded: Mapping[str, Any]) -> List[str]:
    """Why the store no longer holds the recorded run as its newest (empty: it does)."""
    for what, path, check in (("ML Metadata", paths.metadata, os.path.isfile),
                              ("pipeline root", paths.pipeline_root, os.path.isdir)):
        if not check(path):
            return [f"the {what} {path} is gone"]
    try:
        now = metadata_state(paths.metadata, pipeline_name)
    except (sqlite3.Error, LookupError) as e:
        return [f"ML Metadata {paths.metadata} does not hold the recorded run: {e}"]
    if now["run_id"] != recorded.get("run_id"):
        return [f"ML Metadata's newest run is {now['run_id']}, not the recorded {recorded.get('run_id')}"]
    if now["last_execution_id"] != recorded.get("last_execution_id"):
        return [f"ML Metadata holds executions after run {now['run_id']} (a failed or other run)"]
    missing = [u for u in recorded.get("artifact_uris", []) if not os.path.exists(u)]
    if missing:
        return [f"{len(missing)} artifact(s) of run {now['run_id']} are gone, e.g. {missing[0]}"]
    return []


# --- the decision -----------------------------------------------------------------------------

def decide(cfg: PipelineConfig, tune: Optional[bool], force: bool = False,
           code_dirs: Optional[Mapping[str, Sequence[str]]] = None) -> Decision:
    """Would a run execute anything? Reads only the record, files and the SQLite store."""
    paths = local_paths(cfg)
    current = fingerprint(cfg, tune, code_dirs)
    if force:
        return Decision(current, ["--force"])
    unknown = _unfingerprinted(current)
    if unknown:
        return Decision(current, unknown)
    record = read_record(paths)
    if record is None:
        return Decision(current, [f"no successful run recorded in {paths.last_success}"])
    changes = fingerprint_changes(record.get("fingerprint", {}), current)
    if not changes:
        changes = metadata_changes(paths, cfg.pipeline_name, record.get("metadata", {}))
    return Decision(current, changes, record)


def _unfingerprinted(current: Mapping[str, Any]) -> List[str]:
    """Inputs this module cannot read (a remote data path or schema): always a change."""
    problems = [current["data"][UNFINGERPRINTED]] if UNFINGERPRINTED in current["data"] else []
    digests = {"schema": current["schema"], **current["code"]}
    problems += [f"{name}: {digest}" for name, digest in digests.items() if digest.startswith(_UNREADABLE)]
    return problems


def fingerprint_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> List[str]:
    """What differs, one line per kind, naming the first changed keys or files."""
    changes = []
    labels = {"config": "config key", "run": "run option", "code": "code file",
              "schema": "schema", "data": "data file", "environment": "environment"}
    for kind, label in labels.items():
        old, new = before.get(kind), now.get(kind)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            names = _changed_keys(old, new, "")
            shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
            changes.append(f"{label}{'s' if len(names) > 1 else ''} changed: {shown}")
        else:
            changes.append(f"{label} changed")
    return changes


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> List[str]:
    names = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a == b:
            continue
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            names.extend(_changed_keys(a, b, name + "."))
        elif a is _ABSENT:
            names.append(f"{name} (new)")
        elif b is _ABSENT:
            names.append(f"{name} (removed)")
        else:
            names.append(name)
    return names


_ABSENT = object()


# --- the record -------------------------------------------------------------------------------

def read_record(paths: LocalPaths) -> Optional[Dict[str, Any]]:
    """The last successful run's record, or None (absent, unreadable or of another version)."""
    try:
        with open(paths.last_success, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == RECORD_VERSION else None


def forget(paths: LocalPaths) -> None:
    """Before a run executes: no record may outlive a run that does not finish."""
    try:
        os.remove(paths.last_success)
    except FileNotFoundError:
        pass


def record_success(cfg: PipelineConfig, current: Mapping[str, Any], summary: str, seconds: float) -> str:
    """After a successful run: its fingerprints (taken before it ran), ML Metadata's state,
    and the summary it printed, written atomically. Returns the record's path."""
    paths = local_paths(cfg)
    record = {"version": RECORD_VERSION, "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "seconds": round(seconds, 1), "report": paths.report, "summary": summary,
              "metadata": metadata_state(paths.metadata, cfg.pipeline_name), "fingerprint": current}
    tmp = f"{paths.last_success}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, paths.last_success)
    return paths.last_success


def nothing_to_do_text(cfg: PipelineConfig, record: Mapping[str, Any]) -> str:
    """What ``run`` prints instead of running: the run it matches and where its results are."""
    paths = local_paths(cfg)
    meta = record.get("metadata", {})
    return "\n".join([
        f"pipeline {cfg.name}: nothing changed since run {meta.get('run_id')} (finished "
        f"{record.get('finished')}, {record.get('seconds')}s): config, code, schema, data and "
        "ML Metadata are as it left them, so nothing would execute.",
        f"  run directory {paths.root} (ML Metadata {paths.metadata})",
        f"  report {record.get('report')}  (python -m pipeline report --config {config_arg(cfg)})",
        "  --force runs the DAG anyway.",
        "",
        record.get("summary", "")])
