"""Fused ensemble: several wide & deep models of one shape merged into one model.

Why: a single training's score moves by about +-0.01 with its seed (LIAR), and the
average of several seeds' outputs is both steadier and usually better. Averaging
separate models would multiply the ops the browser extension runs per statement
(TF.js's CPU backend pays per op, not per multiply-add). Averaging their *logits*
can instead be written as one model of the same graph, only wider:

- wide part (linear): the members' tables and weights averaged;
- embeddings: the members' tables side by side (``members`` x the dimension);
- hidden layers: block-diagonal, member k's units reading only member k's inputs
  (the dense inputs, shared, feed every block);
- output layer: the members' output weights stacked and divided by their number.

So the merged model's logits equal the mean of the members' logits exactly, its
probabilities are the normalised geometric mean of theirs, and every export
(SavedModel, TFLite, TF.js, the statement-only extension bundle) sees one plain
model with the same layers and op count as a single member.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from trainer.features import ModelInput
from trainer.model import HyperParameters, build_model, deep_embedding_layers


def merge_members(members: Sequence[tf.keras.Model], inputs: Sequence[ModelInput],
                  hparams: HyperParameters, num_classes: int) -> tf.keras.Model:
    """One model whose logits are the mean of ``members``' logits (see module doc).

    ``members`` must all be ``build_model(inputs, hparams, num_classes)`` models.
    """
    if not members:
        raise ValueError("merge_members: no members to merge")
    k = len(members)
    merged = build_model(inputs, hparams, num_classes, members=k)
    layers = _weights_by_layer(members)
    embedded = deep_embedding_layers(inputs)
    for layer in merged.layers:
        name = layer.name
        if name not in layers:
            continue
        weights = layers[name]
        if name.startswith("wide_"):
            layer.set_weights([np.mean(w, axis=0) for w in weights])
        elif name.startswith("embed_"):
            (tables,) = weights
            layer.set_weights([np.concatenate(tables, axis=1)])
        elif name == "deep_0":
            kernels, biases = weights
            segments = [layers[e][0][0].shape[1] for e in embedded]
            layer.set_weights([_first_hidden_kernel(kernels, segments), np.concatenate(biases)])
        elif name.startswith("deep_") and name != "deep_out":
            kernels, biases = weights
            layer.set_weights([_block_diagonal(kernels), np.concatenate(biases)])
        elif name == "deep_out":
            kernels, biases = weights
            layer.set_weights([np.concatenate(kernels, axis=0) / k, np.mean(biases, axis=0)])
        else:
            raise ValueError(f"merge_members: no merge rule for layer {name!r}")
    return merged


def _weights_by_layer(members: Sequence[tf.keras.Model]) -> Dict[str, List[List[np.ndarray]]]:
    """{layer name: [per weight: [per member: array]]} for every layer with weights."""
    result: Dict[str, List[List[np.ndarray]]] = {}
    # Layers pair up by position (one build order); only layers with weights are
    # named by build_model, the others get per-model automatic names.
    for layers in zip(*(m.layers for m in members)):
        per_member = [layer.get_weights() for layer in layers]
        if per_member[0]:
            result[layers[0].name] = [list(ws) for ws in zip(*per_member)]
    return result


def _block_diagonal(kernels: Sequence[np.ndarray]) -> np.ndarray:
    rows, cols = kernels[0].shape
    out = np.zeros((rows * len(kernels), cols * len(kernels)), kernels[0].dtype)
    for i, kernel in enumerate(kernels):
        out[i * rows:(i + 1) * rows, i * cols:(i + 1) * cols] = kernel
    return out


def _first_hidden_kernel(kernels: Sequence[np.ndarray], segments: Sequence[int]) -> np.ndarray:
    """The first hidden layer's kernel over the merged deep input.

    A member's deep input is its embeddings (``segments`` wide each) then the shared
    dense block; the merged input is each embedding's K members side by side, then
    the same dense block once."""
    k = len(kernels)
    rows, cols = kernels[0].shape
    dense_rows = rows - sum(segments)
    out = np.zeros((sum(segments) * k + dense_rows, cols * k), kernels[0].dtype)
    for member, kernel in enumerate(kernels):
        block = slice(member * cols, (member + 1) * cols)
        source = merged = 0
        for width in segments:
            start = merged + member * width
            out[start:start + width, block] = kernel[source:source + width]
            source += width
            merged += width * k
        out[merged:, block] = kernel[source:]
    return out
