"""``pipeline.noop_rerun``: each input changed in turn makes the rerun execute; what is
not an input (outputs, caches, docs) does not; a deleted store or root, or a run after
the recorded one, invalidates the record.

The store is a real ML Metadata SQLite file holding one run as TFX records it (the
contexts ``pipeline``, ``pipeline_run`` and ``node``, an execution and its output
artifact); the e2e run of the whole DAG (tests/e2e/test_taxi_pipeline.py) checks a
real no-op rerun and a real changed one.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from common.loader import load_config
from common.paths import REPO_ROOT
from pipeline import noop_rerun
from pipeline.run_paths import local_paths
from tests.conftest import TAXI_CONFIG
from tests.test_architecture import LAYERS

CSV = "fare,tips\n10.0,1.0\n12.5,0.0\n"


@pytest.fixture
def setup(tmp_path):
    """A config over copies of the data, schema and two code packages, and a recorded run."""
    data = tmp_path / "data"
    (data / "span-1").mkdir(parents=True)
    (data / "span-1" / "data.csv").write_text(CSV)
    schema = tmp_path / "schema.pbtxt"
    shutil.copy(os.path.join(REPO_ROOT, "schema", "taxi", "schema.pbtxt"), schema)
    code = {p: [shutil.copytree(os.path.join(REPO_ROOT, p), str(tmp_path / "code" / p),
                                ignore=shutil.ignore_patterns("__pycache__"))]
            for p in ("trainer", "components")}
    overrides = [f"data.path={data}", f"run_dir={tmp_path}/runs", f"serving.push_dir={tmp_path}/serving",
                 f"schema={schema}"]
    cfg = load_config(TAXI_CONFIG, overrides)
    _store_run(cfg, "run-1")
    decision = noop_rerun.decide(cfg, None, code_dirs=code)
    assert not decision.nothing_to_do  # nothing recorded yet
    noop_rerun.record_success(cfg, decision.fingerprint, "SUMMARY OF RUN 1", 12.0)
    return {"cfg": cfg, "overrides": overrides, "data": data, "schema": schema, "code": code,
            "tmp": tmp_path}


def _store_run(cfg, run_id: str) -> None:
    """One execution of a node of ``cfg``'s pipeline in run ``run_id``, with an output
    artifact under the pipeline root, in the run directory's ML Metadata."""
    paths = local_paths(cfg)
    os.makedirs(paths.pipeline_root, exist_ok=True)
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = paths.metadata
    store = metadata_store.MetadataStore(connection)
    type_ids = {name: store.put_context_type(metadata_store_pb2.ContextType(name=name))
                for name in ("pipeline", "pipeline_run", "node")}
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
    artifact_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Model"))
    uri = os.path.join(paths.pipeline_root, "Trainer", "model", run_id)
    os.makedirs(uri)
    artifact = metadata_store_pb2.Artifact(type_id=artifact_type, uri=uri)
    event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
    contexts = [metadata_store_pb2.Context(type_id=type_ids["pipeline"], name=cfg.pipeline_name),
                metadata_store_pb2.Context(type_id=type_ids["pipeline_run"], name=run_id),
                metadata_store_pb2.Context(type_id=type_ids["node"], name=f"{cfg.pipeline_name}.Trainer")]
    existing = {(c.type_id, c.name): c for c in store.get_contexts()}
    contexts = [existing.get((c.type_id, c.name), c) for c in contexts]
    execution = metadata_store_pb2.Execution(type_id=execution_type,
                                             last_known_state=metadata_store_pb2.Execution.COMPLETE)
    store.put_execution(execution, [(artifact, event)], contexts)


def _decide(setup, *extra, tune=None):
    cfg = load_config(TAXI_CONFIG, setup["overrides"] + list(extra)) if extra else setup["cfg"]
    return noop_rerun.decide(cfg, tune, code_dirs=setup["code"])


def _executes(setup, *extra, tune=None, expect=""):
    decision = _decide(setup, *extra, tune=tune)
    assert not decision.nothing_to_do
    assert expect in "; ".join(decision.changes)
    return decision


def test_nothing_changed_is_a_noop_naming_the_run_and_its_report(setup):
    decision = _decide(setup)
    assert decision.nothing_to_do, decision.changes
    text = noop_rerun.nothing_to_do_text(setup["cfg"], decision.record)
    assert "nothing changed since run run-1" in text and "SUMMARY OF RUN 1" in text
    assert local_paths(setup["cfg"]).report in text and "--force" in text


def test_force_runs_anyway(setup):
    assert noop_rerun.decide(setup["cfg"], None, force=True, code_dirs=setup["code"]).changes == ["--force"]


def test_data_content_of_the_same_size_executes(setup):
    (setup["data"] / "span-1" / "data.csv").write_text(CSV.replace("12.5", "13.5"))
    _executes(setup, expect="data file changed: span-1/data.csv")


def test_data_over_the_hash_limit_is_compared_by_size_and_times(setup):
    cfg = setup["cfg"]
    before = noop_rerun.data_files(cfg.data_path, hash_limit=0)
    time.sleep(0.05)  # past the file system's clock tick
    (setup["data"] / "span-1" / "data.csv").write_text(CSV.replace("12.5", "13.5"))
    assert noop_rerun.data_files(cfg.data_path, hash_limit=0) != before


def test_a_new_span_directory_executes_even_empty(setup):
    (setup["data"] / "span-2").mkdir()
    _executes(setup, expect="data file changed: span-2 (new)")
    (setup["data"] / "span-2" / "data.csv").write_text(CSV)
    _executes(setup, expect="span-2/data.csv (new)")


def test_a_removed_data_file_executes(setup):
    (setup["data"] / "span-1" / "data.csv").unlink()
    _executes(setup, expect="span-1/data.csv (removed)")


def test_the_schema_executes(setup):
    text = setup["schema"].read_text()
    changed = text.replace("min_fraction: 1.0", "min_fraction: 0.99", 1)
    assert changed != text  # the edit must change the schema, whatever it holds today
    setup["schema"].write_text(changed)
    _executes(setup, expect="schema changed")


def test_a_config_key_read_by_a_component_executes(setup, tmp_path):
    config = tmp_path / "taxi-edited.yaml"
    config.write_text(f"extends: {TAXI_CONFIG}\ntrainer:\n  dropout: 0.2\n")
    cfg = load_config(str(config), setup["overrides"])
    decision = noop_rerun.decide(cfg, None, code_dirs=setup["code"])
    assert "trainer.dropout" in "; ".join(decision.changes)


def test_a_set_override_and_the_tune_choice_execute(setup):
    _executes(setup, "trainer.train_steps=200", expect="config key changed: trainer.train_steps")
    _executes(setup, "evaluation.min_auc=0.8", expect="evaluation.min_auc")
    _executes(setup, tune=False, expect="run option changed: tune")


@pytest.mark.parametrize("package, module", [("trainer", "model.py"), ("components", "trainer_run.py")])
def test_module_code_executes(setup, package, module):
    path = os.path.join(setup["code"][package][0], module)
    with open(path, "a") as f:
        f.write("\n# an edit\n")
    _executes(setup, expect=f"code file changed: {package}/{module}")


def test_a_new_module_executes(setup):
    with open(os.path.join(setup["code"]["trainer"][0], "kinds", "new_kind.py"), "w") as f:
        f.write("X = 1\n")
    _executes(setup, expect="trainer/kinds/new_kind.py (new)")


def test_outputs_caches_and_docs_are_not_inputs(setup):
    cfg = setup["cfg"]
    trainer_dir = setup["code"]["trainer"][0]
    os.makedirs(os.path.join(trainer_dir, "__pycache__"), exist_ok=True)
    with open(os.path.join(trainer_dir, "__pycache__", "model.cpython-310.pyc"), "wb") as f:
        f.write(b"compiled")
    with open(os.path.join(trainer_dir, "NOTES.md"), "w") as f:
        f.write("docs\n")
    os.makedirs(os.path.join(trainer_dir, ".ruff_cache", "0.17.6"), exist_ok=True)  # `ruff check .` writes these
    with open(os.path.join(trainer_dir, ".ruff_cache", "0.17.6", "123"), "w") as f:
        f.write("lint cache")
    with open(os.path.join(local_paths(cfg).root, "report.html"), "w") as f:
        f.write("<html>")
    os.makedirs(os.path.join(cfg.push_dir, "1"))
    assert _decide(setup).nothing_to_do


def test_run_directories_inside_the_data_directory_are_not_data(tmp_path):
    data = tmp_path / "data"
    (data / "runs" / "taxi").mkdir(parents=True)
    (data / "data.csv").write_text(CSV)
    before = noop_rerun.data_files(str(data), exclude=[str(data / "runs")])
    (data / "runs" / "taxi" / "metadata.db").write_text("x")
    assert noop_rerun.data_files(str(data), exclude=[str(data / "runs")]) == before
    assert set(before) == {"data.csv"}


@pytest.mark.parametrize("remove", ["metadata", "pipeline_root"])
def test_a_deleted_store_or_pipeline_root_executes(setup, remove):
    path = getattr(local_paths(setup["cfg"]), remove)
    os.remove(path) if os.path.isfile(path) else shutil.rmtree(path)
    _executes(setup, expect="is gone")


def test_a_deleted_artifact_of_the_run_executes(setup):
    shutil.rmtree(os.path.join(local_paths(setup["cfg"]).pipeline_root, "Trainer"))
    _executes(setup, expect="artifact(s) of run run-1 are gone")


def test_any_run_after_the_recorded_one_executes(setup):
    _store_run(setup["cfg"], "run-2")  # e.g. a run that failed (it records no fingerprints)
    _executes(setup, expect="newest run is run-2")


def test_another_run_in_the_same_store_executes(setup):
    """An execution of any pipeline after the recorded run (a span backfill, another config
    sharing the store) may have changed what the resolvers pick."""
    other = load_config(TAXI_CONFIG, setup["overrides"] + ["name=other"])
    other_paths = local_paths(other)
    os.makedirs(other_paths.root)
    os.symlink(local_paths(setup["cfg"]).metadata, other_paths.metadata)
    _store_run(other, "other-run")
    _executes(setup, expect="executions after run run-1")


def test_a_missing_or_damaged_record_executes(setup):
    path = local_paths(setup["cfg"]).last_success
    with open(path, "w") as f:
        f.write("{not json")
    _executes(setup, expect="no successful run recorded")
    noop_rerun.forget(local_paths(setup["cfg"]))
    assert not os.path.exists(path)
    _executes(setup, expect="no successful run recorded")


def test_a_data_path_that_is_not_a_local_directory_always_executes(setup):
    shutil.rmtree(setup["data"])  # gone after the config was checked
    _executes(setup, expect="is not a directory")
    assert noop_rerun.UNFINGERPRINTED in noop_rerun.data_files("gs://bucket/taxi")


def test_the_record_is_replaced_whole(setup):
    """Written to a temporary file and renamed: no half-written record, no temp file left."""
    root = local_paths(setup["cfg"]).root
    assert [n for n in os.listdir(root) if n.startswith("last_success")] == ["last_success.json"]


def test_the_fingerprinted_packages_are_every_floor_the_pipeline_imports():
    assert noop_rerun.CODE_PACKAGES == LAYERS[:LAYERS.index("pipeline") + 1]
    dirs = noop_rerun.package_dirs()
    for package in noop_rerun.CODE_PACKAGES:
        assert dirs[package] == [os.path.join(REPO_ROOT, package)], package


def test_the_dags_code_lies_in_the_fingerprinted_packages():
    """Every module of this checkout loaded by building the DAG and importing every
    executor and user function it names lies in CODE_PACKAGES. In a fresh interpreter:
    a test worker's sys.modules also holds what other tests imported."""
    script = f"""
import importlib, os, sys
from common.loader import load_config
from pipeline.local_runner import build_local_pipeline
pipeline = build_local_pipeline(load_config({TAXI_CONFIG!r}), tune=True)
for component in pipeline.components:
    spec = getattr(component, "executor_spec", None)
    executor = getattr(spec, "executor_class", None)
    if executor is not None:
        importlib.import_module(executor.__module__)
    for key in ("preprocessing_fn", "tuner_fn", "run_fn"):
        dotted = component.exec_properties.get(key)
        if dotted:
            importlib.import_module(dotted.rsplit(".", 1)[0])
root, venv = {REPO_ROOT!r} + os.sep, sys.prefix + os.sep  # the venv may live in the checkout
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if path.startswith(root) and not path.startswith(venv):
        print(name)
"""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ours = set(done.stdout.split())
    outside = sorted(n for n in ours if n.split(".")[0] not in noop_rerun.CODE_PACKAGES)
    assert not outside
    assert {n.split(".")[0] for n in ours} >= {"trainer", "components", "common", "serving", "edge"}


def test_a_symlink_loop_in_the_data_directory_ends(tmp_path):
    data = tmp_path / "data"
    (data / "span-1").mkdir(parents=True)
    (data / "span-1" / "data.csv").write_text(CSV)
    os.symlink(str(data), str(data / "span-1" / "loop"))
    assert set(noop_rerun.data_files(str(data))) == {"span-1", "span-1/data.csv"}
