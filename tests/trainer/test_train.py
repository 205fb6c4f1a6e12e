"""Model, training step and export, on a real Transform output of a few rows."""
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from common.serving_contract import OUTPUT_KEY
from tests.conftest import ROWS
from tests.trainer.conftest import write_transformed
from trainer import features
from trainer.export import export_serving_model
from trainer.model import HyperParameters
from trainer.train import build_for, train, vocabulary_sizes


def _batch(rows, cfg):
    label = features.transformed_label_name(cfg)
    x = {k: np.array([r[k] for r in rows]) for k in rows[0] if k != label}
    return x, np.array([r[label] for r in rows])


def test_vocabulary_sizes_come_from_transform(taxi_config, transform_output):
    sizes = vocabulary_sizes(taxi_config, transform_output[0])
    assert sizes["payment_type"] == 2  # Cash, Credit Card
    # every company is below the frequency threshold: TFT keeps only its placeholder token
    assert sizes["company"] == 1


def test_one_training_step_lowers_the_loss(taxi_config, transform_output):
    tf.keras.utils.set_random_seed(0)
    hparams = HyperParameters.from_trainer_config(taxi_config.trainer).updated({"learning_rate": 0.05})
    model = build_for(taxi_config, transform_output[0], hparams)
    x, y = _batch(transform_output[1], taxi_config)
    before = model.evaluate(x, y, verbose=0)[0]
    model.train_on_batch(x, y)
    after = model.evaluate(x, y, verbose=0)[0]
    assert after < before


def test_patience_zero_trains_every_step_without_early_stopping(taxi_config, transform_output, tmp_path):
    tft_output, rows = transform_output
    path = str(tmp_path / "rows.gz")
    write_transformed(rows, tft_output.transformed_feature_spec(), path)
    cfg = dataclasses.replace(taxi_config, trainer=dataclasses.replace(
        taxi_config.trainer, early_stopping_patience=0, batch_size=8, eval_steps=1))
    model = train(cfg, tft_output, [path], [path], train_steps=30)
    assert int(model.optimizer.iterations.numpy()) == 30


def test_ensemble_trains_each_member_and_exports_one_fused_model(taxi_config, transform_output, tmp_path):
    """trainer.ensemble_size members fused (trainer.ensemble): one model, members x wide,
    which exports like any other (the SavedModel's output equals the Keras model's)."""
    tft_output, rows = transform_output
    path = str(tmp_path / "rows.gz")
    write_transformed(rows, tft_output.transformed_feature_spec(), path)
    cfg = dataclasses.replace(taxi_config, trainer=dataclasses.replace(
        taxi_config.trainer, early_stopping_patience=0, batch_size=8, eval_steps=1, ensemble_size=3))
    model = train(cfg, tft_output, [path], [path], train_steps=20)
    single = build_for(taxi_config, tft_output, HyperParameters.from_trainer_config(cfg.trainer))
    assert model.get_layer("deep_0").units == 3 * single.get_layer("deep_0").units
    assert model.count_params() > 2 * single.count_params()
    x, _ = _batch(rows, cfg)
    keras_out = model.predict(x, verbose=0)
    assert np.isfinite(keras_out).all() and np.ptp(keras_out) > 0
    export_serving_model(model, tft_output, cfg, str(tmp_path / "serving"))
    fn = tf.saved_model.load(str(tmp_path / "serving")).signatures["serving_tf_example"]
    examples = [_raw_example(row).SerializeToString() for row in ROWS]
    np.testing.assert_allclose(fn(tf.constant(examples))[OUTPUT_KEY].numpy(), keras_out, atol=1e-5)


def _raw_example(row) -> tf.train.Example:
    """A raw ROWS entry as the tf.Example ExampleGen would write (empty lists: absent)."""
    def feature(values):
        if isinstance(values[0], bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if isinstance(values[0], float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in row.items() if v}))


def test_hyperparameters_update_ignores_unknown_keys(taxi_config):
    hp = HyperParameters.from_trainer_config(taxi_config.trainer).updated({"hidden_units": 7, "tuner/epochs": 2})
    assert hp.hidden_units == 7 and hp.learning_rate == taxi_config.trainer.learning_rate


@pytest.fixture(scope="module")
def exported(taxi_config, transform_output, tmp_path_factory):
    model = build_for(taxi_config, transform_output[0],
                      HyperParameters.from_trainer_config(taxi_config.trainer))
    path = str(tmp_path_factory.mktemp("export") / "serving")
    export_serving_model(model, transform_output[0], taxi_config, path)
    return tf.saved_model.load(path)


def _raw_instance(row):
    return {k: v[0] for k, v in row.items() if v and k != "tips"}


def test_raw_feature_signature_accepts_json_like_input(exported, taxi_config):
    # what TF Serving's REST API builds from {"instances": [{...}]}
    instance = json.loads(json.dumps({k: (v.decode() if isinstance(v, bytes) else v)
                                      for k, v in _raw_instance(ROWS[0]).items()}))
    # every serving feature is required by name, typed as in the config
    complete = {f.name: instance.get(f.name, 0 if f.dtype != "string" else "") for f in taxi_config.features}
    fn = exported.signatures["serving_default"]
    inputs = {name: tf.constant([value], dtype=features.tf_dtype(dtype))
              for name, dtype in features.serving_feature_dtypes(taxi_config).items()
              for value in [complete[name]]}
    out = fn(**inputs)[OUTPUT_KEY].numpy()
    assert out.shape == (1, 1) and 0.0 <= out[0, 0] <= 1.0


def test_tf_example_signature_matches_raw_signature(exported, taxi_config):
    row = ROWS[1]
    example = tf.train.Example()
    for name, values in row.items():
        if not values or name == "tips":
            continue
        feature = example.features.feature[name]
        if isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif isinstance(values[0], float):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    from_example = exported.signatures["serving_tf_example"](
        examples=tf.constant([example.SerializeToString()]))[OUTPUT_KEY].numpy()
    assert from_example.shape == (1, 1) and np.isfinite(from_example).all()
    # transform_features (TFMA's label source) also yields the label when tips is present
    example.features.feature["tips"].float_list.value.append(5.0)
    transformed = exported.signatures["transform_features"](examples=tf.constant([example.SerializeToString()]))
    assert transformed[features.transformed_label_name(taxi_config)].numpy().tolist() == [1]
