"""A statement-only specialisation of the edge model, made when the extension is bundled.

Why: a page gives the extension one statement and no metadata, so every other
input of the edge model is always fed its missing value ("" or 0). TF.js's
graph executor pays per node (tens of microseconds, more than the kernels
themselves for one statement), and the branches of those inputs (regex, split,
vocabulary lookup, embedding, mean) are most of the graph although, for a
missing value, their result is the same row for every statement.

How (generic, no feature names): the edge SavedModel's serving function is
frozen and inlined as the TF.js converter does it. Every tensor that depends
only on the other inputs and is read by a node that depends on the text input
(the "frontier", e.g. a missing feature's embedding row) is evaluated once by
TensorFlow with the missing values and put back as a constant; the branches
that computed it are pruned. A frontier tensor must be one row per statement
(row ``i`` of a batch of ``n`` equals the single-row value) or independent of
the batch; anything else is refused with the tensor's name. Per-row constants
are repeated over the batch (``Tile``), except where the reader broadcasts
anyway (elementwise ops: the single row is fed, and grappler then folds chains
like ``((x + c1) + c2)`` into one add) or concatenates several of them (merged
into one constant). The result is saved as a SavedModel, checked against the
edge model on probe statements, and converted by the same TF.js converter.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf

from common.serving_contract import OUTPUT_KEY, SERVING_SIGNATURE
from edge.convert import to_tfjs as convert_to_tfjs

# What a page cannot know is fed as missing; extension/scorer.js uses the same values.
MISSING_VALUES: Dict[tf.DType, object] = {tf.string: b"", tf.int64: 0, tf.int32: 0, tf.float32: 0.0}
# Readers that broadcast a [1, ...] operand exactly as its tiled [n, ...] copy (the build-time
# check below would catch an operand whose other side is not one row per statement).
BROADCASTING_OPS = {"Add", "AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum"}
# Probe statements for the build-time check: empty, unknown words, digits, punctuation, long.
PROBES = ["", "the", "Says 45 percent of voters, in 2016, did not vote!",
          "unknownwordzzz qqq", " ".join(["tax", "jobs", "health", "care"] * 30)]
CHECK_TOLERANCE = 1e-5


class SpecialisationError(RuntimeError):
    """The edge model cannot be specialised to its text input; the message names the tensor."""


@dataclass
class Specialisation:
    """What was fixed: the inputs bound to their missing value and the frontier tensors folded."""
    text_input: str
    fixed_inputs: Dict[str, str]
    frontier: List[str]
    nodes_before: int
    nodes_after: int
    max_abs_difference: float
    source_fingerprint: str  # the edge SavedModel's checksum (fingerprint.pb): which export it came from


def _name(ref: str) -> str:
    return ref.lstrip("^").split(":")[0]


def _tensor(ref: str) -> str:
    return ref if ":" in ref else ref + ":0"


def _dependencies(graph_def: tf.compat.v1.GraphDef, inputs: Set[str]) -> Dict[str, Set[str]]:
    """For each node, the signature inputs it depends on (through data and control edges)."""
    nodes = {n.name: n for n in graph_def.node}
    deps: Dict[str, Set[str]] = {}
    for start in nodes:  # iterative: inlined graphs are deeper than Python's recursion limit
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if name in deps:
                continue
            parents = [_name(i) for i in nodes[name].input]
            if not expanded:
                stack.append((name, True))
                stack.extend((p, False) for p in parents if p not in deps)
                continue
            found = {name} if name in inputs else set()
            for p in parents:
                found |= deps[p]
            deps[name] = found
    return deps


def missing_value(dtype_name: str) -> object:
    """The missing value of an input dtype, as JSON (for extension_config.json)."""
    value = MISSING_VALUES[tf.as_dtype(dtype_name)]
    return value.decode() if isinstance(value, bytes) else value


def _missing(dtype: tf.DType, n: int) -> tf.Tensor:
    if dtype not in MISSING_VALUES:
        raise SpecialisationError(f"input of dtype {dtype.name}: no missing value defined "
                                  f"(expected one of {[d.name for d in MISSING_VALUES]})")
    return tf.constant([MISSING_VALUES[dtype]] * n, dtype=dtype)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    # Float kernels may round differently with the batch size (matmul blocking): 1e-6 is far
    # below the 1e-4 the extension is held to.
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-6, atol=1e-6))
    return bool(np.array_equal(a, b))


def per_row_constant(name: str, values: Sequence[np.ndarray]) -> Tuple[np.ndarray, bool]:
    """(value, per_row) from a tensor's values for batches of 1, 2 and 3 missing rows: one row
    to repeat over the batch (``per_row``), or a value independent of the batch."""
    one = values[0]
    if all(_close(v, one) for v in values[1:]) and (one.ndim == 0 or one.shape[0] != 1):
        return one, False
    if one.ndim >= 1 and one.shape[0] == 1 and all(
            _close(v, np.repeat(one, n, axis=0)) for n, v in zip((2, 3), values[1:])):
        return one, True
    raise SpecialisationError(
        f"tensor {name!r} (depends only on inputs fed as missing) is neither one row per statement nor "
        f"independent of the batch (shapes {[v.shape for v in values]}); bundle the full model instead")


class _Frozen:
    """The edge serving function frozen and inlined (the TF.js converter's own freezing), with
    its input placeholders, table handles and output tensor name."""

    def __init__(self, edge_saved_model_dir: str):
        from tensorflow.python.framework import convert_to_constants

        self.source_dir = edge_saved_model_dir
        self.loaded = tf.saved_model.load(edge_saved_model_dir)
        if SERVING_SIGNATURE not in self.loaded.signatures:
            raise SpecialisationError(f"{edge_saved_model_dir}: no '{SERVING_SIGNATURE}' signature")
        self.fn = self.loaded.signatures[SERVING_SIGNATURE]
        self.specs: Dict[str, tf.TensorSpec] = self.fn.structured_input_signature[1]
        # A dict signature flattens sorted by key; captured inputs (tables, variables) follow.
        self.placeholders = {k: _name(t.name) for k, t in zip(sorted(self.specs), self.fn.inputs)}
        frozen = convert_to_constants.convert_variables_to_constants_v2(
            self.fn, lower_control_flow=True, aggressive_inlining=True)
        self.graph_def = frozen.graph.as_graph_def()
        # Variables became constants; what is still a resource placeholder is a table.
        tables = {n.name for n in self.graph_def.node
                  if n.op == "Placeholder" and n.attr["dtype"].type == tf.resource.as_datatype_enum}
        self.handles = {t.name: h for t, h in zip(self.fn.inputs[len(self.specs):], self.fn.captured_inputs)
                        if _name(t.name) in tables}
        keys = sorted(self.fn.structured_outputs)  # frozen.outputs follow the flattened dict
        self.output_key = OUTPUT_KEY if OUTPUT_KEY in keys else keys[0]
        if len(keys) != 1 and self.output_key != OUTPUT_KEY:
            raise SpecialisationError(
                f"{edge_saved_model_dir}: expected one output or one named '{OUTPUT_KEY}', got {keys}")
        self.output = frozen.outputs[keys.index(self.output_key)].name

    def missing_values(self, tensors: Sequence[str], rows: int) -> List[np.ndarray]:
        """Values of frozen-graph tensors for ``rows`` rows of missing inputs (tables fed their
        live handles)."""
        def run():
            # tf.identity captures the (eager) table handles into the wrapped graph.
            return tf.graph_util.import_graph_def(
                self.graph_def, name="", return_elements=list(tensors),
                input_map={**{k: tf.identity(h) for k, h in self.handles.items()},
                           **{f"{self.placeholders[k]}:0": _missing(s.dtype, rows)
                              for k, s in self.specs.items()}})
        return [np.asarray(v) for v in tf.compat.v1.wrap_function(run, [])()]


def _prune(graph_def: tf.compat.v1.GraphDef, output: str) -> tf.compat.v1.GraphDef:
    """Only the nodes ``output`` needs (data and control edges)."""
    return tf.compat.v1.graph_util.extract_sub_graph(graph_def, [output])


def _concat_axis(nodes: Dict[str, tf.compat.v1.NodeDef], node: tf.compat.v1.NodeDef) -> Optional[int]:
    """The constant axis of a ConcatV2 node, or None when it is computed."""
    axis = nodes.get(_name(node.input[-1]))
    return int(tf.make_ndarray(axis.attr["value"].tensor)) if axis is not None and axis.op == "Const" else None


def _rewire(frozen: _Frozen, text_input: str) -> Tuple[tf.compat.v1.GraphDef, Dict[str, Tuple[np.ndarray, bool]],
                                                       List[str]]:
    """The graph with every frontier read replaced by a placeholder, pruned to the output.

    Returns the graph, the value of each new placeholder with whether to tile it over the
    batch, and the frontier tensors' names.
    """
    graph_def, specs = frozen.graph_def, frozen.specs
    text_node = frozen.placeholders[text_input]
    deps = _dependencies(graph_def, set(frozen.placeholders.values()))
    nodes = {n.name: n for n in graph_def.node}

    def fixed(ref: str) -> bool:  # computed from the missing inputs only
        return bool(deps[_name(ref)]) and text_node not in deps[_name(ref)]

    readers = [n for n in graph_def.node if text_node in deps[n.name]]
    frontier = list(dict.fromkeys(_tensor(r) for n in readers for r in n.input
                                  if fixed(r) and not r.startswith("^")))
    if not frontier:
        raise SpecialisationError(f"{frozen.source_dir}: no input but {text_input!r} is read; nothing to fold")
    by_batch = [frozen.missing_values(frontier, n) for n in (1, 2, 3)]
    values = {t: per_row_constant(t, [b[i] for b in by_batch]) for i, t in enumerate(frontier)}

    rewired = tf.compat.v1.GraphDef()
    rewired.CopyFrom(graph_def)
    stand_ins: Dict[str, Tuple[np.ndarray, bool]] = {}

    def stand_in(value: np.ndarray, per_row: bool) -> str:
        name = f"statement_only/constant_{len(stand_ins)}"
        stand_ins[name] = (value, per_row)
        node = rewired.node.add(name=name, op="Placeholder")
        node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
        return name

    for node in list(rewired.node):  # a copy: stand-ins are appended while walking
        if text_node not in deps[node.name]:
            continue
        # Control edges from the folded branches (auto control dependencies between stateless
        # table reads) go with them.
        inputs = [r for r in node.input if not (r.startswith("^") and fixed(r))]
        axis = _concat_axis(nodes, node) if node.op == "ConcatV2" else None
        new_inputs: List[str] = []
        run: List[str] = []  # consecutive per-row frontier inputs of a concat (merged into one)

        def flush() -> None:
            if run:
                parts = [values[_tensor(r)][0] for r in run]
                new_inputs.append(stand_in(np.concatenate(parts, axis=axis), True))
                run.clear()

        for i, ref in enumerate(inputs):
            if not fixed(ref):
                flush()
                new_inputs.append(ref)
                continue
            value, per_row = values[_tensor(ref)]
            # A concat's data inputs come first (its axis is input N); merge along any axis but
            # the batch one.
            mergeable = (axis is not None and i < node.attr["N"].i and value.ndim > 0
                         and axis % value.ndim != 0)
            if mergeable and per_row:
                run.append(ref)
                continue
            flush()
            broadcast = node.op in BROADCASTING_OPS and not all(fixed(r) for r in inputs)
            new_inputs.append(stand_in(value, per_row and not broadcast))
        flush()
        del node.input[:]
        node.input.extend(new_inputs)
        if node.op == "ConcatV2":
            node.attr["N"].i = len(new_inputs) - 1
    pruned = _prune(rewired, _name(frozen.output))
    still_read = {frozen.placeholders[k] for k in specs if k != text_input} & {n.name for n in pruned.node}
    if still_read:
        raise SpecialisationError(f"inputs {sorted(still_read)} are still read after specialisation")
    return pruned, {k: v for k, v in stand_ins.items() if any(n.name == k for n in pruned.node)}, frontier


def _resources(root: tf.Module, handles: Sequence[tf.Tensor]) -> List[object]:
    """The resource objects (hash tables) under ``root`` that own ``handles``."""
    from tensorflow.python.checkpoint.trackable_view import TrackableView  # what the TF.js converter walks
    from tensorflow.python.trackable.resource import TrackableResource

    wanted = {h._id for h in handles}  # pylint: disable=protected-access
    found = [obj for obj in TrackableView(root).descendants()
             if isinstance(obj, TrackableResource)
             and obj.resource_handle._id in wanted]  # pylint: disable=protected-access
    if len(found) != len(wanted):
        raise SpecialisationError(f"found {len(found)} of the {len(wanted)} tables the text input reads")
    return found


def specialise(edge_saved_model_dir: str, text_input: str, out_dir: str) -> Specialisation:
    """Writes a SavedModel to ``out_dir`` whose ``serving_default`` takes only ``text_input``
    and returns what the edge model returns with every other input missing (checked on
    ``PROBES`` to ``CHECK_TOLERANCE``)."""
    frozen = _Frozen(edge_saved_model_dir)
    if text_input not in frozen.specs:
        raise SpecialisationError(
            f"{edge_saved_model_dir}: no input {text_input!r} (inputs: {sorted(frozen.specs)})")
    text_spec = frozen.specs[text_input]
    pruned, stand_ins, frontier = _rewire(frozen, text_input)
    text_tensor = f"{frozen.placeholders[text_input]}:0"
    used = {n.name for n in pruned.node}
    handles = {k: h for k, h in frozen.handles.items() if _name(k) in used}

    class StatementOnly(tf.Module):
        """The specialised serving function and the tables it still reads (only those: the TF.js
        converter expects every resource of the saved object graph to be one of its inputs)."""

        def __init__(self):
            super().__init__()
            self.tables = _resources(frozen.loaded, list(handles.values()))

        @tf.function(input_signature=[{text_input: tf.TensorSpec([None], text_spec.dtype, name=text_input)}])
        def serve(self, inputs):
            text = inputs[text_input]
            rows = tf.shape(text, out_type=tf.int32)[:1]
            multiples: Dict[int, tf.Tensor] = {}  # one per rank, shared by every tiled constant
            mapping = {text_tensor: text, **{k: tf.identity(h) for k, h in handles.items()}}
            for name, (value, per_row) in stand_ins.items():
                constant = tf.constant(value)
                if per_row:
                    if value.ndim not in multiples:
                        multiples[value.ndim] = tf.concat([rows, tf.ones([value.ndim - 1], tf.int32)], 0)
                    constant = tf.tile(constant, multiples[value.ndim])
                mapping[f"{name}:0"] = constant
            out, = tf.graph_util.import_graph_def(pruned, input_map=mapping, return_elements=[frozen.output],
                                                  name="edge")
            return {frozen.output_key: out}

    module = StatementOnly()
    tf.saved_model.save(module, out_dir, signatures={SERVING_SIGNATURE: module.serve})
    difference = _check(frozen, text_input, tf.saved_model.load(out_dir).signatures[SERVING_SIGNATURE])
    return Specialisation(
        text_input=text_input,
        fixed_inputs={k: frozen.specs[k].dtype.name for k in sorted(frozen.specs) if k != text_input},
        frontier=frontier, nodes_before=len(frozen.graph_def.node), nodes_after=len(pruned.node),
        max_abs_difference=difference,
        source_fingerprint=str(tf.saved_model.experimental.read_fingerprint(
            edge_saved_model_dir).saved_model_checksum))


def _check(frozen: _Frozen, text_input: str, specialised) -> float:
    """Largest difference between the specialised and the edge model on ``PROBES``, one at a
    time and as one batch; refuses the specialisation above ``CHECK_TOLERANCE``."""
    worst = 0.0
    for batch in [[p] for p in PROBES] + [PROBES]:
        texts = tf.constant(batch)
        feeds = {k: _missing(s.dtype, len(batch)) for k, s in frozen.specs.items() if k != text_input}
        expected = frozen.fn(**feeds, **{text_input: texts})[frozen.output_key].numpy()
        got = specialised(**{text_input: texts})[frozen.output_key].numpy()
        if expected.shape != got.shape:
            raise SpecialisationError(f"specialised output shape {got.shape} != edge model's {expected.shape}")
        worst = max(worst, float(np.max(np.abs(expected - got))))
    if worst > CHECK_TOLERANCE:
        raise SpecialisationError(f"the specialised model differs from the edge model by {worst:.2e} "
                                  f"(> {CHECK_TOLERANCE}) on the probe statements")
    return worst


def to_tfjs(edge_saved_model_dir: str, text_input: str, tfjs_dir: str) -> Specialisation:
    """The statement-only TF.js graph model (model.json + shards) written to ``tfjs_dir``."""
    with tempfile.TemporaryDirectory(prefix="statement-only-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        info = specialise(edge_saved_model_dir, text_input, saved)
        convert_to_tfjs(saved, tfjs_dir)
    return info
