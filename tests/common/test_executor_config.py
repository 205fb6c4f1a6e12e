"""Each executor's slice of the config (common.executor_config): what changes it, what it
rebuilds to, and, running each executor's real code, that it reads nothing outside it."""
import json
import os

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from common import executor_config
from common.config import PipelineConfig
from common.loader import load_config
from common.paths import REPO_ROOT
from components.baselines import BaselineMetrics
from components.claim_record import ClaimIndex, ClaimNeighbours
from components.error_analysis import ANALYSIS_FILE, ErrorAnalysis, ModelAnalysis
from components.text_baselines import TEXT_BASELINES_FILE, TextBaselines
from components.trainer_run import run_fn
from components.tsv_example_gen import parse_line
from testing import liar_fixture
from testing.config_reads import outside, recording_reads
from testing.liar_fixture import fixture_overrides
from tests.conftest import ROWS, TAXI_CONFIG
from trainer import features, preprocessing
from trainer.tuning import tuner_fn

EXECUTORS = {
    "Transform": (executor_config.transform, executor_config.TRANSFORM_KEYS),
    "Tuner": (executor_config.tuner, executor_config.TUNER_KEYS),
    "Trainer": (executor_config.trainer, executor_config.TRAINER_KEYS),
    "ClaimNeighbours": (executor_config.claim_neighbours, executor_config.CLAIM_NEIGHBOURS_KEYS),
    "ErrorAnalysis": (executor_config.error_analysis, executor_config.ERROR_ANALYSIS_KEYS),
    "TextBaselines": (executor_config.text_baselines, executor_config.TEXT_BASELINES_KEYS),
}
# Keys only the gateway, the cluster manifests, Beam or the Kubeflow compiler read.
SERVING_ONLY = ["serving.rest_port=9100", "serving.max_batch_rows=8", "serving.request_log_dir=elsewhere",
                "serving.max_request_bytes=4096", "serving.batching.max_batch_size=4",
                "serving.kubernetes.replicas=3", "serving.push_dir=other/serving", "serving.canary_requests=3",
                "beam.direct_num_workers=2", "kubeflow.image=registry/image:tag", "run_dir=other/runs"]
CONFIG_FILES = ["taxi.yaml", "liar.yaml", "liar-binary.yaml", "liar-leaky.yaml"]


@pytest.fixture(scope="module")
def liar_dir(tmp_path_factory):
    return liar_fixture.write_fixture(str(tmp_path_factory.mktemp("liar_slices")))


def _load(name: str, liar_dir: str, *overrides: str) -> PipelineConfig:
    extra = [] if name == "taxi.yaml" else fixture_overrides(liar_dir)
    return load_config(os.path.join(REPO_ROOT, "configs", name), extra + list(overrides))


def _value(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


# --- what changes a slice --------------------------------------------------------

@pytest.mark.parametrize("name", CONFIG_FILES)
@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_a_serving_only_edit_leaves_every_slice_identical(name, executor, liar_dir):
    make, _ = EXECUTORS[executor]
    assert make(_load(name, liar_dir, *SERVING_ONLY)) == make(_load(name, liar_dir))


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_a_trainer_edit_changes_the_trainer_slice_but_not_transforms(name, liar_dir):
    base, tweaked = _load(name, liar_dir), _load(name, liar_dir, "trainer.learning_rate=0.02")
    for executor in ("Trainer", "Tuner"):
        make, _ = EXECUTORS[executor]
        assert make(tweaked) != make(base), executor
    for executor in ("Transform", "ClaimNeighbours", "ErrorAnalysis", "TextBaselines"):
        make, _ = EXECUTORS[executor]
        assert make(tweaked) == make(base), executor


def test_the_keys_an_executor_reads_change_its_slice(liar_dir):
    base = _load("liar.yaml", liar_dir)
    changes = {"serving.model_name=other": {"Trainer"}, "serving.edge_exports=false": {"Trainer"},
               "trainer.seed=7": {"Trainer", "Tuner", "TextBaselines"},
               "tuner.trial_steps=3": {"Tuner"},
               "evaluation.reduced_features=[party]": {"ErrorAnalysis"},
               "evaluation.min_accuracy=0.3": set(),
               "claim_neighbours.k=4": {"ClaimNeighbours"},
               "data.seed=7": {"ClaimNeighbours"},
               'label.positive_classes=["true"]': set(EXECUTORS)}
    for override, expected in changes.items():
        edited = _load("liar.yaml", liar_dir, override)
        changed = {e for e, (make, _) in EXECUTORS.items() if make(edited) != make(base)}
        assert changed == expected, override


def test_sections_no_executor_reads_are_in_no_slice(liar_dir):
    cfg = _load("liar.yaml", liar_dir)
    for executor, (make, _) in EXECUTORS.items():
        keys = set(make(cfg)[executor_config.SLICE_KEY])
        assert not keys & {"beam", "kubeflow", "run_dir", "source_file"}, executor


# --- what a slice rebuilds to ----------------------------------------------------

@pytest.mark.parametrize("name", CONFIG_FILES)
@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_a_slice_rebuilds_the_values_of_the_keys_it_lists(name, executor, liar_dir):
    """Validated like a config; listed keys as in the file (the leaky audit keeps its
    features), everything else at its default."""
    make, keys = EXECUTORS[executor]
    cfg = _load(name, liar_dir)
    rebuilt = executor_config.config_from_slice(json.loads(json.dumps(make(cfg))), executor)
    for key in keys:
        assert _value(rebuilt, key) == _value(cfg, key), key
    assert rebuilt.beam == type(cfg.beam)() and rebuilt.run_dir == "runs"
    assert rebuilt.serving.rest_port == type(cfg.serving)().rest_port


def test_a_config_without_a_slice_names_the_executor():
    with pytest.raises(ValueError, match="Trainer custom_config: expected the config slice under 'pipeline_config'"):
        executor_config.config_from_slice({"name": "taxi"}, "Trainer custom_config")


# --- what each executor reads, running its real code -----------------------------

def _assert_covered(reads, executor: str, must_read=()):
    """Every read is in the executor's slice; ``must_read`` shows the recording works."""
    _, keys = EXECUTORS[executor]
    assert outside(reads, keys) == [], f"{executor} reads keys outside its slice"
    assert set(must_read) <= reads
    dotted = [k for k in keys if "." in k]  # a single key is listed because it is read
    assert set(dotted) <= reads, f"{executor} lists keys it never reads"


@pytest.fixture(scope="module")
def taxi(tmp_path_factory):
    """The taxi config with budgets of a few steps, feature dropout, two ensemble
    members and a reduced request, so the runs below take every branch that reads config."""
    return load_config(TAXI_CONFIG, [
        "trainer.train_steps=2", "trainer.eval_steps=1", "trainer.batch_size=2", "trainer.ensemble_size=2",
        "trainer.feature_dropout_share=0.5", "trainer.feature_dropout_keep=[fare]",
        "tuner.max_trials=1", "tuner.trial_steps=2", "evaluation.reduced_features=[fare]"])


def _raw_examples(cfg, rows):
    """Serialized raw tf.Examples of tft_beam instance dicts (empty lists: absent)."""
    coder = tft.coders.ExampleProtoCoder(schema_utils.schema_from_feature_spec(features.raw_feature_spec(cfg)))
    return [coder.encode(row) for row in rows]


def _artifact(cls, uri: str):
    """An output artifact of type ``cls`` at ``uri`` (created, as the orchestrator does)."""
    artifact = cls()
    artifact.uri = uri
    os.makedirs(uri, exist_ok=True)
    return artifact


def _examples_artifact(uri, splits):
    """An Examples artifact laid out as ExampleGen writes it: gzipped TFRecords per split."""
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(sorted(splits))
    for split, records in splits.items():
        os.makedirs(os.path.join(uri, f"Split-{split}"))
        with tf.io.TFRecordWriter(os.path.join(uri, f"Split-{split}", "data.gz"), options="GZIP") as writer:
            for record in records:
                writer.write(record)
    return examples


@pytest.fixture(scope="module")
def transformed(taxi, tmp_path_factory):
    """(Transform output dir, transformed examples file, Transform's reads): ROWS
    through preprocessing_fn with Transform's slice, as the Transform executor calls it."""
    out = str(tmp_path_factory.mktemp("slice_transform"))
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(features.raw_feature_spec(taxi)))
    custom_config = executor_config.transform(taxi)
    with recording_reads() as reads, tft_beam.Context(temp_dir=os.path.join(out, "tmp"), force_tf_compat_v1=False):
        (rows, transformed_metadata), transform_fn = ((ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, custom_config), output_record_batches=False))
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(out, "transform"))
    path = os.path.join(out, "transformed.gz")
    coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for row in rows:
            writer.write(coder.encode(row))
    return os.path.join(out, "transform"), path, reads


@pytest.fixture(scope="module")
def trained(taxi, transformed, tmp_path_factory):
    """(Model artifact URI, the Trainer's reads): run_fn as the Trainer executor calls it."""
    transform_dir, path, _ = transformed
    model_uri = str(tmp_path_factory.mktemp("slice_model"))
    fn_args = FnArgs(train_files=[path], eval_files=[path], train_steps=2, eval_steps=1,
                     transform_output=transform_dir, transform_graph_path=transform_dir,
                     serving_model_dir=path_utils.serving_model_dir(model_uri),
                     model_run_dir=os.path.join(model_uri, "run"),
                     custom_config=executor_config.trainer(taxi))
    with recording_reads() as reads:
        run_fn(fn_args)
    return model_uri, reads


def test_transform_reads_only_its_slice(transformed):
    _assert_covered(transformed[2], "Transform", must_read={"features", "label.kind"})


def test_the_trainer_reads_only_its_slice(trained):
    """Training (two members, feature dropout, early stopping) and the export with its edge files."""
    _assert_covered(trained[1], "Trainer", must_read={"trainer.ensemble_size", "trainer.feature_dropout_keep",
                                                     "serving.edge_exports", "serving.model_name", "name"})


def test_the_tuner_reads_only_its_slice(taxi, transformed, tmp_path):
    """tuner_fn, then the search the Tuner executor runs with its result."""
    transform_dir, path, _ = transformed
    fn_args = FnArgs(train_files=[path], eval_files=[path], working_dir=str(tmp_path),
                     transform_graph_path=transform_dir, custom_config=executor_config.tuner(taxi))
    with recording_reads() as reads:
        result = tuner_fn(fn_args)
        result.tuner.search(**result.fit_kwargs)
    _assert_covered(reads, "Tuner", must_read={"tuner.learning_rates", "trainer.dropout"})


def test_error_analysis_reads_only_its_slice(taxi, trained, tmp_path):
    records = _raw_examples(taxi, ROWS)
    examples = _examples_artifact(str(tmp_path / "examples"), {"train": records, "eval": records})
    model = _artifact(standard_artifacts.Model, trained[0])
    analysis = _artifact(ModelAnalysis, str(tmp_path / "analysis"))
    with recording_reads() as reads:
        ErrorAnalysis.test_call(examples=examples, model=model, analysis=analysis,
                                config_json=json.dumps(executor_config.error_analysis(taxi)))
    with open(os.path.join(analysis.uri, ANALYSIS_FILE)) as f:
        assert "only_fare" in json.load(f)["splits"]["eval"]
    _assert_covered(reads, "ErrorAnalysis")


@pytest.fixture(scope="module")
def liar_examples(liar_dir, tmp_path_factory):
    """(config, Examples artifact) of LIAR-format rows, train and eval splits."""
    cfg = _load("liar.yaml", liar_dir)

    def parsed(split_rows):
        return [parse_line("\t".join(r), cfg.data.columns, "fixture").SerializeToString() for r in split_rows]

    uri = str(tmp_path_factory.mktemp("liar_examples") / "examples")
    splits = {"train": parsed(liar_fixture.TRICKY + liar_fixture.rows(40)),
              "eval": parsed(liar_fixture.rows(12, offset=10_000))}
    return cfg, _examples_artifact(uri, splits)


def test_text_baselines_read_only_their_slice(liar_examples, tmp_path):
    cfg, examples = liar_examples
    baselines = _artifact(BaselineMetrics, str(tmp_path / "baselines"))
    with recording_reads() as reads:
        TextBaselines.test_call(examples=examples, baselines=baselines,
                                config_json=json.dumps(executor_config.text_baselines(cfg)))
    assert os.path.isfile(os.path.join(baselines.uri, TEXT_BASELINES_FILE))
    _assert_covered(reads, "TextBaselines")


def test_claim_neighbours_reads_only_its_slice(liar_examples, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCE_VECTOR_CACHE", str(tmp_path / "vectors.sqlite"))
    cfg, examples = liar_examples
    enriched = _artifact(standard_artifacts.Examples, str(tmp_path / "enriched"))
    index = _artifact(ClaimIndex, str(tmp_path / "index"))
    with recording_reads() as reads:
        ClaimNeighbours.test_call(examples=examples, enriched=enriched, index=index,
                                  config_json=json.dumps(executor_config.claim_neighbours(cfg)))
    assert os.path.isdir(os.path.join(enriched.uri, "Split-eval"))
    _assert_covered(reads, "ClaimNeighbours", must_read={"claim_neighbours.k", "label.classes"})


def test_the_recording_sees_reads_outside_a_slice_but_not_copies(liar_dir):
    """The check above is only as good as the recording: a read of a key the slice
    lacks is reported, with a property's reads; a ``dataclasses.replace`` copy is not a read."""
    import dataclasses

    cfg = _load("liar.yaml", liar_dir)
    with recording_reads() as reads:
        rebuilt = executor_config.config_from_slice(executor_config.transform(cfg), "test")
        copy = dataclasses.replace(rebuilt, trainer=dataclasses.replace(rebuilt.trainer, seed=1))
        assert reads == set()
        _ = rebuilt.num_classes, copy.serving.rest_port, copy.trainer.seed
    assert reads == {"label.kind", "label.positive_classes", "label.fold_to_binary", "label.classes",
                     "serving.rest_port", "trainer.seed"}
    assert outside(reads, executor_config.TRANSFORM_KEYS) == ["serving.rest_port", "trainer.seed"]
