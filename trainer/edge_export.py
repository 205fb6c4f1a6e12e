"""Edge exports: a TFLite model and a TF.js graph model beside the SavedModel.

Why a separate graph: ``serving_default`` runs TF Transform's graph, which
initializes its vocabulary tables from text files and (in the other
signatures) parses tf.Examples. TF.js has neither op and TFLite has them only
with SELECT_TF_OPS. The edge module takes the same raw features as
``serving_default`` (same names, dtypes, one value per row) and returns the
same output, with the Transform analysis embedded as constants: vocabularies
as in-graph hash tables, means/variances/quantile boundaries as constants.
The feature math itself is not repeated here: the edge module calls the same
``prepare``/``apply`` functions of ``trainer.preprocessing.KINDS`` as
Transform's ``preprocessing_fn`` (see that module's docstring).

Why at the Trainer's export (``export_serving_model``): only there are the
Keras model and the Transform output both at hand, and the files then travel
inside the model artifact through Evaluator, InfraValidator and Pusher (and
ML Metadata) unchanged. They live under ``assets.extra/``, which TF Serving
ignores:

    assets.extra/edge_saved_model/   the edge module as a SavedModel (conversion source)
    assets.extra/edge_saved_model_tflite/  the same, traced with TFLite's string ops (TFLite source)
    assets.extra/model.tflite        TFLite, builtin ops only unless unavoidable
    assets.extra/tfjs/model.json     TF.js graph model (+ weight shards)
    assets.extra/edge_signature.json inputs in order, output, conversion facts

CLI, to convert again (e.g. a new converter version) a model already pushed:
``python -m trainer.edge_export --saved_model runs/serving/taxi/<version>``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from common.config import PipelineConfig
from trainer import features, preprocessing, text_features

logger = logging.getLogger(__name__)

OUTPUT_KEY = "outputs"  # the same output key as serving_default (trainer.export)
EDGE_DIR = "assets.extra"
EDGE_SAVED_MODEL = "edge_saved_model"
# The TFLite conversion source: the same module traced with TFLite's string ops
# (word n-grams by StringJoin: TFLite has no StringNGrams, TF.js no StringJoin).
EDGE_SAVED_MODEL_TFLITE = "edge_saved_model_tflite"
TFLITE_FILE = "model.tflite"
TFJS_DIR = "tfjs"
SIGNATURE_FILE = "edge_signature.json"
SIGNATURE_KEY = "serving_default"


# --------------------------------------------------------------------------
# Reading the Transform analysis back as constants
# --------------------------------------------------------------------------

def read_analyzer_constants(transform_savedmodel_dir: str) -> Dict[str, np.ndarray]:
    """Values of the analyzer results ``preprocessing_fn`` named (``constant_node_name``).

    TF Transform bakes analyzer results into its saved graph as tensors
    captured by the transform function; each named ``tf.Identity`` is followed
    through function arguments and call sites back to that captured value (or
    to a ``Const`` node), without running the graph.
    """
    loaded = tf.saved_model.load(transform_savedmodel_dir)
    fn = next(iter(loaded.signatures.values()))
    graph_def = fn.graph.as_graph_def()
    functions = {f.signature.name: f for f in graph_def.library.function}
    top_nodes = {n.name: n for n in graph_def.node}
    captures = {t.name.split(":")[0]: value for t, value in
                zip(fn.graph.internal_captures, fn.captured_inputs)}
    callers: Dict[str, List[tuple]] = {}
    for scope, nodes in [(None, graph_def.node)] + [(f.signature.name, f.node_def) for f in functions.values()]:
        for node in nodes:
            if "f" in node.attr and node.attr["f"].func.name in functions:
                callers.setdefault(node.attr["f"].func.name, []).append((scope, node))

    def nodes_of(scope: Optional[str]) -> Dict[str, Any]:
        return top_nodes if scope is None else {n.name: n for n in functions[scope].node_def}

    def resolve(scope: Optional[str], ref: str, depth: int = 0) -> np.ndarray:
        if depth > 50:
            raise ValueError(f"analyzer constant {ref!r}: reference chain too deep")
        name = ref.lstrip("^").split(":")[0]
        if scope is not None:
            args = [a.name for a in functions[scope].signature.input_arg]
            if name in args:  # a function argument: the value its callers pass
                index = args.index(name)
                values = [resolve(s, node.input[index], depth + 1) for s, node in callers.get(scope, [])]
                if not values or any(not np.array_equal(values[0], v) for v in values[1:]):
                    raise ValueError(f"analyzer constant {ref!r} in {scope}: "
                                     f"{len(values)} call sites without one common value")
                return values[0]
        node = nodes_of(scope).get(name)
        if node is None:
            if scope is None and name in captures:
                return np.asarray(captures[name].numpy())
            raise ValueError(f"analyzer constant: node {name!r} not found in {scope or 'the top graph'}")
        if node.op == "Const":
            return tf.make_ndarray(node.attr["value"].tensor)
        if node.op == "Identity":
            return resolve(scope, node.input[0], depth + 1)
        if node.op in _ELEMENTWISE:  # e.g. tft.count_per_key parses its int keys from strings
            return _ELEMENTWISE[node.op](resolve(scope, node.input[0], depth + 1), node.attr)
        if scope is None and node.op == "Placeholder" and name in captures:
            return np.asarray(captures[name].numpy())
        raise ValueError(f"analyzer constant: cannot read a value through op {node.op} ({name!r})")

    constants: Dict[str, np.ndarray] = {}
    for scope, function in functions.items():
        for node in function.node_def:
            short = node.name.split("/")[-1]
            if short.startswith(preprocessing.CONSTANT_PREFIX) and node.op == "Identity":
                constants[short] = resolve(scope, node.input[0])
    return constants


# Single-input ops an analyzer result may pass through before it is named.
_ELEMENTWISE = {
    "StringToNumber": lambda value, attr: tf.strings.to_number(
        value, out_type=tf.dtypes.as_dtype(attr["out_type"].type)).numpy(),
    "Cast": lambda value, attr: tf.cast(value, tf.dtypes.as_dtype(attr["DstT"].type)).numpy(),
}


def edge_analyses(cfg: PipelineConfig, tf_transform_output: Any) -> Dict[str, preprocessing.Analysis]:
    """Per feature, the analysis its kind's ``apply`` needs, as constants."""
    constants = read_analyzer_constants(tf_transform_output.transform_savedmodel_dir)
    analyses = {}
    for feature in cfg.features:
        kind = preprocessing.feature_kind(feature)
        if not isinstance(kind, preprocessing.FeatureKind) or kind.edge_analysis is None:
            raise ValueError(f"feature {feature.name!r}: kind {feature.kind!r} has no edge export "
                             "(TFLite/TF.js): it is not a FeatureKind with an edge_analysis")
        prefix = preprocessing.constant_node_name(feature.name, "")
        own = {name[len(prefix):]: value for name, value in constants.items()
               if name.startswith(prefix) and "__" not in name[len(prefix):]}
        analyses[feature.name] = kind.edge_analysis(feature, own, tf_transform_output)
    return analyses


def serving_input_signature(cfg: PipelineConfig) -> Dict[str, tf.TensorSpec]:
    """``serving_default``'s inputs: one [None] tensor per raw feature, config order."""
    return {name: tf.TensorSpec([None], features.tf_dtype(dtype), name=name)
            for name, dtype in features.serving_feature_dtypes(cfg).items()}


def edge_transform(cfg: PipelineConfig, analyses: Mapping[str, preprocessing.Analysis],
                   raw: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Raw serving inputs -> transformed features, with the analysis as constants.

    Each feature runs its kind's ``prepare`` and ``apply`` (the functions
    Transform runs) with an all-true ``present`` mask: like ``serving_default``,
    every row carries one value per feature.
    """
    transformed: Dict[str, tf.Tensor] = {}
    for feature in cfg.features:
        kind = preprocessing.feature_kind(feature)
        values = kind.prepare(feature, raw[feature.column])
        present = tf.fill(tf.shape(values), True)
        transformed.update(kind.apply(feature, values, present, analyses[feature.name]))
    return transformed


def build_edge_module(model: tf.keras.Model, cfg: PipelineConfig, tf_transform_output: Any,
                      analyses: Optional[Mapping[str, preprocessing.Analysis]] = None) -> tf.Module:
    """A tf.Module whose ``serve`` maps raw features to ``{"outputs": probabilities}``."""
    analyses = analyses if analyses is not None else edge_analyses(cfg, tf_transform_output)
    module = tf.Module()
    # Only the weights and tables are tracked, not the Keras model (see trainer.export).
    module.model_variables = list(model.variables)
    module.tables = [value for analysis in analyses.values() for value in analysis.values()
                     if isinstance(value, tf.Module)]
    model_keys = list(model.input_names)

    @tf.function(input_signature=[serving_input_signature(cfg)])
    def serve(raw):
        transformed = edge_transform(cfg, analyses, raw)
        return {OUTPUT_KEY: model({k: transformed[k] for k in model_keys}, training=False)}

    module.serve = serve
    return module


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class EdgeExport:
    """Where the edge files are and what the conversion needed."""
    directory: str
    tflite_path: str
    tfjs_model_json: str
    signature_path: str
    tflite_select_tf_ops: bool
    seconds: float


def edge_dir(model_dir: str) -> str:
    return os.path.join(model_dir, EDGE_DIR)


def write_edge_exports(model: tf.keras.Model, tf_transform_output: Any, cfg: PipelineConfig,
                       model_dir: str) -> EdgeExport:
    """Builds the edge module and writes all edge files under ``<model_dir>/assets.extra``.

    A failure stops the Trainer, naming the config switch that turns the edge
    exports off: a blessed model without its promised edge files would only
    be noticed by the phone or browser that cannot find them.
    """
    start = time.perf_counter()
    try:
        analyses = edge_analyses(cfg, tf_transform_output)
        for name, context in ((EDGE_SAVED_MODEL, contextlib.nullcontext),
                              (EDGE_SAVED_MODEL_TFLITE, text_features.ngrams_by_join)):
            with context():  # the graph is traced here, at get_concrete_function
                module = build_edge_module(model, cfg, tf_transform_output, analyses)
                tf.saved_model.save(module, os.path.join(edge_dir(model_dir), name),
                                    signatures={SIGNATURE_KEY: module.serve.get_concrete_function()})
        source = {"dataset": cfg.name, "model_name": cfg.serving.model_name, "model_version": None}
        return convert(model_dir, list(features.serving_feature_dtypes(cfg)), source, started=start,
                       lowercase_inputs=ascii_lowercase_inputs(cfg))
    except Exception as err:
        raise RuntimeError(
            f"edge export (TFLite/TF.js) of dataset {cfg.name!r} failed: {err}\n"
            "Set serving.edge_exports: false in the dataset config if its features cannot run "
            "on the edge runtimes.") from err


def ascii_lowercase_inputs(cfg: PipelineConfig) -> List[str]:
    """Raw inputs the edge models expect ASCII lower-cased (TF.js has no StringLower)."""
    return sorted({f.column for f in cfg.features if preprocessing.feature_kind(f).ascii_lowercase_input})


def convert(model_dir: str, input_order: Sequence[str], source: Mapping[str, Any],
            started: Optional[float] = None, lowercase_inputs: Sequence[str] = ()) -> EdgeExport:
    """TFLite + TF.js + signature file from ``assets.extra/edge_saved_model``.

    The new files are written to a staging directory and moved into place, so
    a reader never sees a half-written TF.js model.
    """
    start = started if started is not None else time.perf_counter()
    out = edge_dir(model_dir)
    source_dir = os.path.join(out, EDGE_SAVED_MODEL)
    if not os.path.isfile(os.path.join(source_dir, "saved_model.pb")):
        raise FileNotFoundError(
            f"{source_dir}: no edge SavedModel; models exported before edge support have none "
            "(re-run the Trainer to produce one)")
    staging = tempfile.mkdtemp(prefix=".edge-staging-", dir=out)
    try:
        tflite_source = os.path.join(out, EDGE_SAVED_MODEL_TFLITE)
        if not os.path.isfile(os.path.join(tflite_source, "saved_model.pb")):
            tflite_source = source_dir  # exported before the TFLite variant existed
        tflite_bytes, select_ops = to_tflite(tflite_source)
        with open(os.path.join(staging, TFLITE_FILE), "wb") as f:
            f.write(tflite_bytes)
        to_tfjs(source_dir, os.path.join(staging, TFJS_DIR))
        signature = edge_signature(source_dir, select_ops, input_order, source, lowercase_inputs)
        with open(os.path.join(staging, SIGNATURE_FILE), "w") as f:
            json.dump(signature, f, indent=2, sort_keys=True)
        for name in (TFLITE_FILE, TFJS_DIR, SIGNATURE_FILE):
            target = os.path.join(out, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(os.path.join(staging, name), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - start
    logger.info("edge exports written to %s in %.1f s", out, seconds)
    return EdgeExport(out, os.path.join(out, TFLITE_FILE), os.path.join(out, TFJS_DIR, "model.json"),
                      os.path.join(out, SIGNATURE_FILE), select_ops, seconds)


def to_tflite(saved_model_dir: str) -> "tuple[bytes, bool]":
    """TFLite flatbuffer with builtin ops; SELECT_TF_OPS only when builtins cannot express
    the graph (e.g. several OOV hash buckets need a string hash), returned as the flag."""
    def run(ops) -> bytes:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[SIGNATURE_KEY])
        converter.target_spec.supported_ops = ops
        return converter.convert()

    try:
        return run([tf.lite.OpsSet.TFLITE_BUILTINS]), False
    except Exception as err:  # the converter raises ConverterError with the op list
        if "ERROR_NEEDS_FLEX_OPS" not in str(err) and "TF Select ops" not in str(err):
            raise
        logger.warning("TFLite: builtin ops do not cover the edge graph, using SELECT_TF_OPS: %s",
                       str(err).splitlines()[-1])
        return run([tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]), True


def to_tfjs(saved_model_dir: str, output_dir: str) -> None:
    """TF.js graph model (model.json + weight shards) of the edge SavedModel."""
    from tensorflowjs.converters import tf_saved_model_conversion_v2  # slow import, only here

    tf_saved_model_conversion_v2.convert_tf_saved_model(
        saved_model_dir, output_dir, signature_def=SIGNATURE_KEY, saved_model_tags="serve")


def edge_signature(saved_model_dir: str, tflite_select_tf_ops: bool, input_order: Sequence[str],
                   source: Mapping[str, Any], lowercase_inputs: Sequence[str] = ()) -> Dict[str, Any]:
    """What a client needs to call the edge models: inputs in order, output, provenance.

    ``ascii_lowercase`` on an input: the caller maps A-Z to a-z and U+2019 to "'"
    before feeding it (what Transform does in the SavedModel; TF.js has no
    StringLower op and cannot match non-ASCII patterns).

    ``source`` names the model (dataset, model name, version when known: the
    Pusher assigns versions after the Trainer has written these files).
    """
    import tensorflowjs

    fn = tf.saved_model.load(saved_model_dir).signatures[SIGNATURE_KEY]
    _, specs = fn.structured_input_signature
    if sorted(input_order) != sorted(specs):
        raise ValueError(f"{saved_model_dir}: inputs {sorted(specs)} differ from the expected {sorted(input_order)}")
    output = fn.structured_outputs[OUTPUT_KEY]
    return {
        "inputs": [{"name": name, "dtype": specs[name].dtype.name, "shape": [-1],
                    "ascii_lowercase": name in lowercase_inputs} for name in input_order],
        "output": {"name": OUTPUT_KEY, "dtype": output.dtype.name, "shape": [-1] + output.shape.as_list()[1:]},
        "tflite": {"path": TFLITE_FILE, "signature": SIGNATURE_KEY, "select_tf_ops": tflite_select_tf_ops},
        "tfjs": {"path": f"{TFJS_DIR}/model.json", "format": "graph-model",
                 "int64_inputs": "int32 (TF.js has no int64; values must fit in int32)"},
        "source": dict(source, saved_model_signature=SIGNATURE_KEY,
                       exported_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       tensorflow=tf.__version__, tensorflowjs=tensorflowjs.__version__),
    }


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.edge_export",
        description="Convert a model's edge SavedModel (assets.extra/edge_saved_model) to TFLite and "
                    "TF.js again, e.g. after a converter upgrade.",
        epilog="example: python -m trainer.edge_export --saved_model runs/serving/taxi/1700000000")
    parser.add_argument("--saved_model", required=True, help="model directory (a pushed version or a "
                        "Trainer output), the one holding saved_model.pb")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    model_dir = args.saved_model.rstrip("/")
    if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        print(f"error: {model_dir}: not a SavedModel directory (no saved_model.pb)", file=sys.stderr)
        return 2
    source_dir = os.path.join(edge_dir(model_dir), EDGE_SAVED_MODEL)
    if not os.path.isfile(os.path.join(source_dir, "saved_model.pb")):
        print(f"error: {source_dir}: no edge SavedModel; models exported before edge support have "
              "none (re-run the Trainer to produce one)", file=sys.stderr)
        return 1
    previous = _read_json(os.path.join(edge_dir(model_dir), SIGNATURE_FILE)) or {}
    # input order and provenance as the Trainer recorded them; the version is the directory name
    order = [i["name"] for i in previous.get("inputs", [])] or sorted(
        tf.saved_model.load(source_dir).signatures[SIGNATURE_KEY].structured_input_signature[1])
    version = os.path.basename(model_dir)
    source = {k: previous.get("source", {}).get(k) for k in ("dataset", "model_name")}
    lowercase = [i["name"] for i in previous.get("inputs", []) if i.get("ascii_lowercase")]
    export = convert(model_dir, order, dict(source, model_version=version if version.isdigit() else None),
                     lowercase_inputs=lowercase)
    print(f"TFLite: {export.tflite_path} (SELECT_TF_OPS: {export.tflite_select_tf_ops})")
    print(f"TF.js:  {export.tfjs_model_json}")
    print(f"signature: {export.signature_path} ({export.seconds:.1f} s)")
    return 0


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    sys.exit(main())
