"""Bundles the browser extension with the TF.js export of a pushed model.

Why a build step: the extension must run offline (no remote call, no CDN), so
the TF.js runtime, the graph model and a small description of its inputs are
copied into one unpacked Manifest V3 folder that Chromium loads as is.

``python -m edge.browser_extension --config configs/liar.yaml --out build/extension``
takes the newest version under the config's push folder (or ``--model_dir``).

By default the bundled model is the statement-only specialisation of the
model's own edge export (``edge.statement_only``): a page has no speaker
metadata, so the other inputs are bound to their missing value at build time
and their branches folded away, which makes one statement about 3x faster
in TF.js (LIAR, headless Chromium: 6.5 -> 2.3 ms). ``--full_model`` bundles the Trainer's TF.js export unchanged.

``--calibration lean.json`` (``python -m edge.calibration``, fitted on the
training file's folds) gives the extension its calibrated true/false lean and
its "not sure" threshold; by default ``edge/calibrations/<config name>.json``
when it exists (the recipe's calibration, committed with the config it was
fitted for); else the lean is the model's raw P(positive), always shown, and
the build says so.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence

from common.cli_args import add_config_arguments
from common.config import ConfigError, PipelineConfig
from common.loader import load_config
from common.serving_contract import (
    EDGE_DIR,
    EDGE_SAVED_MODEL,
    EDGE_SIGNATURE_FILE,
    SERVING_SIGNATURE,
    TFJS_DIR,
    edge_path,
)
from edge.calibration import CalibrationError, Lean, load_lean

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTENSION_SOURCE = os.path.join(REPO_ROOT, "extension")
# The ES2017 build: the default tf.min.js carries polyfills that call
# Function("return this"), which Manifest V3's content security policy forbids.
TFJS_RUNTIME = os.path.join(REPO_ROOT, "node_modules", "@tensorflow", "tfjs", "dist", "tf.es2017.min.js")
TFJS_SUBDIR = os.path.join(EDGE_DIR, TFJS_DIR)
EDGE_SAVED_MODEL_SUBDIR = os.path.join(EDGE_DIR, EDGE_SAVED_MODEL)
CALIBRATIONS = os.path.join(REPO_ROOT, "edge", "calibrations")


def default_calibration(cfg: PipelineConfig) -> Optional[str]:
    """The committed calibration of the config's recipe, if there is one."""
    path = os.path.join(CALIBRATIONS, f"{cfg.name}.json")
    return path if os.path.isfile(path) else None


class ExtensionBuildError(RuntimeError):
    """The extension cannot be bundled; the message says which file or setting is missing."""


def newest_version_dir(base_path: str) -> str:
    """The highest numeric version folder under a TF Serving model base path."""
    if not os.path.isdir(base_path):
        raise ExtensionBuildError(f"{base_path}: no pushed model (run the pipeline first)")
    versions = [int(d) for d in os.listdir(base_path) if d.isdigit()]
    if not versions:
        raise ExtensionBuildError(f"{base_path}: no numbered model version in it")
    return os.path.join(base_path, str(max(versions)))


def text_feature(cfg: PipelineConfig, override: Optional[str] = None) -> str:
    """The raw feature that carries the statement.

    A page gives the extension text and nothing else, so the feature is the
    config's only text feature, or, when there are several (LIAR: statement,
    job, context), the only one the model is trained to use alone
    (``trainer.feature_dropout_keep``).
    """
    names = [f.name for f in cfg.features]
    if override:
        if override not in names:
            raise ExtensionBuildError(f"--text_feature {override!r}: expected one of {names}")
        return override
    texts = [f.name for f in cfg.features if f.kind == "text"]
    if len(texts) > 1:
        texts = [name for name in texts if name in cfg.trainer.feature_dropout_keep] or texts
    if len(texts) != 1:
        raise ExtensionBuildError(
            f"config '{cfg.name}': expected exactly one feature of kind 'text', or one of them in "
            f"trainer.feature_dropout_keep, for the extension; found {texts}; pass --text_feature")
    return texts[0]


def signature_inputs(model_dir: str) -> List[Dict[str, str]]:
    """Input names and dtypes of the SavedModel's serving signature, sorted by name."""
    import tensorflow as tf  # deferred: the rest of the module is plain file work

    loaded = tf.saved_model.load(model_dir)
    if SERVING_SIGNATURE not in loaded.signatures:
        raise ExtensionBuildError(f"{model_dir}: no '{SERVING_SIGNATURE}' signature")
    _, specs = loaded.signatures[SERVING_SIGNATURE].structured_input_signature
    return [{"name": name, "dtype": spec.dtype.name} for name, spec in sorted(specs.items())]


def text_is_lowercased(model_dir: str, text_input: str) -> bool:
    """Whether the edge model expects the text input ASCII lower-cased (edge_signature.json)."""
    path = edge_path(model_dir, EDGE_SIGNATURE_FILE)
    if not os.path.isfile(path):
        raise ExtensionBuildError(f"{path}: missing (the Trainer's edge export writes it)")
    with open(path, encoding="utf-8") as f:
        inputs = {i["name"]: i for i in json.load(f)["inputs"]}
    if text_input not in inputs:
        raise ExtensionBuildError(f"{path}: no input {text_input!r} (inputs: {sorted(inputs)})")
    return bool(inputs[text_input].get("ascii_lowercase", False))


def positive_indices(cfg: PipelineConfig) -> List[int]:
    """The outputs whose probabilities add up to P(true): the positive classes of a six-way
    label (``label.positive_classes``), the positive output of a binary one; [] when the
    config names none (the extension then shows the label alone)."""
    if cfg.label.is_binary_fold:
        return [1]
    if cfg.label.kind == "classes" and cfg.label.positive_classes:
        return cfg.label.positive_class_ids
    return [1] if len(cfg.class_names) == 2 else []


def lean_section(indices: Sequence[int], classes: Sequence[str], lean: Optional[Lean]) -> Dict[str, Any]:
    """extension_config.json's ``lean``: which outputs are "true", the calibration map and the
    "not sure" threshold (both null when uncalibrated: raw P(true), always shown)."""
    section: Dict[str, Any] = {
        "positive_indices": list(indices), "positive_classes": [classes[i] for i in indices],
        "positive_label": "true", "negative_label": "false", "calibration": None, "threshold": None}
    if lean is not None:
        section.update(calibration=asdict(lean.calibration), threshold=lean.threshold,
                       target_precision=lean.target_precision,
                       fitted_on={"folds": lean.folds, "rows": lean.rows, "cross_fitted": lean.cross_fitted,
                                  "bound": lean.bound, "transfer": lean.transfer})
    return section


def extension_config(cfg: PipelineConfig, model_dir: str, text_override: Optional[str] = None,
                     calibration: Optional[str] = None) -> Dict[str, Any]:
    """What scorer.js needs to feed the model: inputs, the text input, classes, the lean."""
    text = text_feature(cfg, text_override)
    indices = positive_indices(cfg)
    if calibration and not indices:
        raise ExtensionBuildError(f"--calibration {calibration}: config '{cfg.name}' names no positive "
                                  "classes (label.positive_classes) to lean towards")
    try:
        lean = load_lean(calibration) if calibration else None
    except (OSError, CalibrationError) as error:
        raise ExtensionBuildError(f"--calibration {calibration}: {error}") from error
    return {
        "model": cfg.serving.model_name,
        "model_version": os.path.basename(os.path.normpath(model_dir)),
        "text_feature": text,
        # The edge model takes lower-cased text (TF.js has no StringLower op): the
        # Trainer's edge signature says which inputs (edge.signature).
        "ascii_lowercase": text_is_lowercased(model_dir, text),
        "inputs": signature_inputs(model_dir),
        "classes": cfg.class_names,
        "lean": lean_section(indices, cfg.class_names, lean) if indices else None,
    }


def build(cfg: PipelineConfig, out_dir: str, model_dir: Optional[str] = None,
          text_override: Optional[str] = None, full_model: bool = False,
          calibration: Optional[str] = None) -> str:
    """Writes the unpacked extension to ``out_dir`` (replaced) and returns it."""
    model_dir = model_dir or newest_version_dir(cfg.push_dir)
    config = extension_config(cfg, model_dir, text_override, calibration)
    if full_model:
        return bundle(out_dir, os.path.join(model_dir, TFJS_SUBDIR),
                      dict(config, tfjs_model={"kind": "full", "source": TFJS_SUBDIR}))
    return bundle_statement_only(out_dir, model_dir, config)


def bundle_statement_only(out_dir: str, model_dir: str, config: Dict[str, Any]) -> str:
    """Bundles the statement-only specialisation of ``model_dir``'s edge SavedModel.

    Made here, not at training time, because which input a page can fill is the
    extension's business; it is derived from the blessed model's own edge export
    only (no retraining), and extension_config.json records that (``tfjs_model``)
    with the inputs it fixed. ``inputs`` becomes the text input alone.
    """
    from edge import statement_only  # deferred: imports TensorFlow and the TF.js converter

    source = os.path.join(model_dir, EDGE_SAVED_MODEL_SUBDIR)
    if not os.path.isfile(os.path.join(source, "saved_model.pb")):
        raise ExtensionBuildError(f"{source}: no edge SavedModel (the Trainer's edge export writes it); "
                                  "pass --full_model to bundle the TF.js export as is")
    text = config["text_feature"]
    with tempfile.TemporaryDirectory(prefix="statement-only-tfjs-") as tmp:
        tfjs_dir = os.path.join(tmp, "tfjs")
        try:
            info = statement_only.to_tfjs(source, text, tfjs_dir)
        except statement_only.SpecialisationError as error:
            raise ExtensionBuildError(f"{source}: {error}; pass --full_model to bundle the TF.js export "
                                      "as is") from error
        inputs = [i for i in config["inputs"] if i["name"] == text]
        return bundle(out_dir, tfjs_dir, dict(config, inputs=inputs, tfjs_model={
            "kind": "statement_only",
            "source": EDGE_SAVED_MODEL_SUBDIR,
            "model_version": config["model_version"],
            "source_fingerprint": info.source_fingerprint,
            "fixed_inputs": {name: {"dtype": dtype, "value": statement_only.missing_value(dtype)}
                             for name, dtype in info.fixed_inputs.items()},
            "folded_tensors": len(info.frontier),
            "graph_nodes": {"edge_model": info.nodes_before, "statement_only": info.nodes_after},
            "max_abs_difference_on_probes": info.max_abs_difference,
        }))


def bundle(out_dir: str, tfjs_dir: str, config: Dict[str, Any]) -> str:
    """Copies the extension sources, the TF.js runtime and the model into ``out_dir``.

    Written to a staging folder first and renamed, so a failed build never
    leaves a half extension where Chromium loads it.
    """
    if not os.path.isfile(os.path.join(tfjs_dir, "model.json")):
        raise ExtensionBuildError(f"{tfjs_dir}: no TF.js model.json (the edge export writes it at training time)")
    if not os.path.isfile(TFJS_RUNTIME):
        raise ExtensionBuildError(f"{TFJS_RUNTIME}: TF.js runtime missing (run `make setup`)")
    staging = out_dir.rstrip("/") + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(EXTENSION_SOURCE, staging, ignore=shutil.ignore_patterns("README*"))
    os.makedirs(os.path.join(staging, "vendor"))
    shutil.copy2(TFJS_RUNTIME, os.path.join(staging, "vendor", "tf.min.js"))
    shutil.copytree(tfjs_dir, os.path.join(staging, "model"))
    with open(os.path.join(staging, "model", "extension_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    return out_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, tune_flag=False)
    parser.add_argument("--out", default="build/extension")
    parser.add_argument("--model_dir", help="a pushed version folder (default: the newest)")
    parser.add_argument("--text_feature", help="the raw feature carrying the statement")
    parser.add_argument("--full_model", action="store_true",
                        help="bundle the Trainer's TF.js export as is, not its statement-only specialisation")
    parser.add_argument("--calibration", help="the lean's calibration map and threshold (python -m edge.calibration)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, require_data=False)
        calibration = args.calibration or default_calibration(cfg)
        out = build(cfg, args.out, args.model_dir, args.text_feature, full_model=args.full_model,
                    calibration=calibration)
    except (ConfigError, ExtensionBuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not calibration:
        print("warning: no --calibration (and no edge/calibrations/<config name>.json): the lean is the "
              "model's raw P(true), never 'not sure'", file=sys.stderr)
    print(f"extension written to {out}: load it unpacked (chrome://extensions, developer mode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
