"""The edge graph: the model and the Transform analysis as one module TFLite and TF.js run.

Why a separate graph: ``serving_default`` runs TF Transform's graph, which
initializes its vocabulary tables from text files and (in the other
signatures) parses tf.Examples. TF.js has neither op and TFLite has them only
with SELECT_TF_OPS. The edge module takes the same raw features as
``serving_default`` (same names, dtypes, one value per row) and returns the
same output, with the Transform analysis embedded as constants: vocabularies
as in-graph hash tables, means/variances/quantile boundaries as constants.
The feature math itself is not repeated here: the edge module calls the same
``prepare``/``apply`` functions of the kinds in ``trainer.kinds.registry`` as
Transform's ``preprocessing_fn`` (see ``trainer.kinds.base``).

Why in the trainer: only at the Trainer's export (``export_serving_model``)
are the Keras model and the Transform output both at hand. This module writes
the edge module as SavedModels under ``assets.extra/`` (which TF Serving
ignores); ``edge.convert`` turns them into the TFLite and TF.js files next to
them, right after the export (the Trainer's ``run_fn``,
``components.trainer_run``), so all of them travel inside the model artifact
through Evaluator, InfraValidator and Pusher unchanged:

    assets.extra/edge_saved_model/   the edge module as a SavedModel (conversion source)
    assets.extra/edge_saved_model_tflite/  the same, traced with TFLite's string ops (TFLite source)
    assets.extra/model.tflite        TFLite, builtin ops only unless unavoidable  (edge.convert)
    assets.extra/tfjs/model.json     TF.js graph model (+ weight shards)          (edge.convert)
    assets.extra/edge_signature.json inputs in order, output, conversion facts     (edge.convert)
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
import tensorflow as tf

from common.config import PipelineConfig
from common.serving_contract import EDGE_SAVED_MODEL, EDGE_SAVED_MODEL_TFLITE, OUTPUT_KEY, SERVING_SIGNATURE, edge_path
from trainer import features
from trainer.kinds import registry
from trainer.kinds.base import CONSTANT_PREFIX, Analysis, constant_node_name
from trainer.kinds.strings import ngrams_by_join

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
            if short.startswith(CONSTANT_PREFIX) and node.op == "Identity":
                constants[short] = resolve(scope, node.input[0])
    return constants


# Single-input ops an analyzer result may pass through before it is named.
_ELEMENTWISE = {
    "StringToNumber": lambda value, attr: tf.strings.to_number(
        value, out_type=tf.dtypes.as_dtype(attr["out_type"].type)).numpy(),
    "Cast": lambda value, attr: tf.cast(value, tf.dtypes.as_dtype(attr["DstT"].type)).numpy(),
}


def edge_analyses(cfg: PipelineConfig, tf_transform_output: Any) -> Dict[str, Analysis]:
    """Per feature, the analysis its kind's ``apply`` needs, as constants."""
    constants = read_analyzer_constants(tf_transform_output.transform_savedmodel_dir)
    analyses = {}
    for feature in cfg.features:
        kind = registry.feature_kind(feature)
        if kind.edge_analysis is None:
            raise ValueError(f"feature {feature.name!r}: kind {feature.kind!r} has no edge export "
                             "(TFLite/TF.js): its FeatureKind has no edge_analysis")
        prefix = constant_node_name(feature.name, "")
        own = {name[len(prefix):]: value for name, value in constants.items()
               if name.startswith(prefix) and "__" not in name[len(prefix):]}
        analyses[feature.name] = kind.edge_analysis(feature, own, tf_transform_output)
    return analyses


def edge_transform(cfg: PipelineConfig, analyses: Mapping[str, Analysis],
                   raw: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Raw serving inputs -> transformed features, with the analysis as constants.

    Each feature runs its kind's ``prepare`` and ``apply`` (the functions
    Transform runs) with an all-true ``present`` mask: like ``serving_default``,
    every row carries one value per feature.
    """
    transformed: Dict[str, tf.Tensor] = {}
    for feature in cfg.features:
        kind = registry.feature_kind(feature)
        values = kind.prepare(feature, raw[feature.column])
        present = tf.fill(tf.shape(values), True)
        transformed.update(kind.apply(feature, values, present, analyses[feature.name]))
    return transformed


def build_edge_module(model: tf.keras.Model, cfg: PipelineConfig, tf_transform_output: Any,
                      analyses: Optional[Mapping[str, Analysis]] = None) -> tf.Module:
    """A tf.Module whose ``serve`` maps raw features to ``{"outputs": probabilities}``."""
    analyses = analyses if analyses is not None else edge_analyses(cfg, tf_transform_output)
    module = tf.Module()
    # Only the weights and tables are tracked, not the Keras model (see trainer.export).
    module.model_variables = list(model.variables)
    module.tables = [value for analysis in analyses.values() for value in analysis.values()
                     if isinstance(value, tf.Module)]
    model_keys = list(model.input_names)

    @tf.function(input_signature=[features.serving_input_signature(cfg)])
    def serve(raw):
        transformed = edge_transform(cfg, analyses, raw)
        return {OUTPUT_KEY: model({k: transformed[k] for k in model_keys}, training=False)}

    module.serve = serve
    return module


# --------------------------------------------------------------------------
# Writing the edge SavedModels
# --------------------------------------------------------------------------

@contextlib.contextmanager
def edge_export_failure(cfg: PipelineConfig) -> Iterator[None]:
    """Any failure of the edge export stops the Trainer, naming the config switch that
    turns it off: a blessed model without its promised edge files would only be noticed
    by the phone or browser that cannot find them."""
    try:
        yield
    except Exception as err:
        raise RuntimeError(
            f"edge export (TFLite/TF.js) of dataset {cfg.name!r} failed: {err}\n"
            "Set serving.edge_exports: false in the dataset config if its features cannot run "
            "on the edge runtimes.") from err


def write_edge_saved_models(model: tf.keras.Model, tf_transform_output: Any, cfg: PipelineConfig,
                            model_dir: str) -> None:
    """Builds the edge module and saves it twice under ``<model_dir>/assets.extra``: as
    TF.js runs it and traced with TFLite's string ops (word n-grams by StringJoin: TFLite
    has no StringNGrams, TF.js no StringJoin). ``edge.convert`` converts them."""
    with edge_export_failure(cfg):
        analyses = edge_analyses(cfg, tf_transform_output)
        for name, context in ((EDGE_SAVED_MODEL, contextlib.nullcontext),
                              (EDGE_SAVED_MODEL_TFLITE, ngrams_by_join)):
            with context():  # the graph is traced here, at get_concrete_function
                module = build_edge_module(model, cfg, tf_transform_output, analyses)
                tf.saved_model.save(module, edge_path(model_dir, name),
                                    signatures={SERVING_SIGNATURE: module.serve.get_concrete_function()})


def ascii_lowercase_inputs(cfg: PipelineConfig) -> List[str]:
    """Raw inputs the edge models expect ASCII lower-cased (TF.js has no StringLower)."""
    return sorted({f.column for f in cfg.features if registry.feature_kind(f).ascii_lowercase_input})
