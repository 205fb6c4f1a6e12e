"""Render the TF Serving manifests from a dataset config into a directory.

    python -m serving.k8s --config configs/taxi.yaml --out build/k8s
    python -m serving.k8s --config configs/taxi.yaml --out build/k8s --stable 3 --canary 4

Every object is checked against the Kubernetes schemas before anything is
written. Output, one alternative per directory (apply one of them):

    <out>/tf-serving/{configmap,deployment,service}.yaml   <out>/tf-serving.yaml (all in one)
    <out>/kserve/{configmap,inferenceservice}.yaml         <out>/kserve.yaml     (all in one)

and, for either, the alerting rules (thresholds from the config's ``monitoring``) and
the canary analysis for Argo Rollouts (thresholds from ``rollout_analysis``):

    <out>/monitoring/prometheusrule.yaml   <out>/monitoring.yaml   (prometheus-operator)
    <out>/monitoring/analysistemplate.yaml                         (Argo Rollouts)
    <out>/prometheus-rules.yaml            (the same groups for Prometheus' rule_files)
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from common.cli_args import add_config_arguments
from common.config import ConfigError
from common.loader import load_config
from serving.k8s import render, rules, validate
from serving.models_config import ModelsConfigError

RULE_FILE = "prometheus-rules.yaml"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the TF Serving files) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(manifests: Sequence[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream, keys in the order they were built."""
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write(rendered: Mapping[str, List[Dict[str, Any]]], out_dir: str) -> List[str]:
    """One file per kind under ``<out>/<alternative>/`` and one all-in-one per alternative."""
    paths = []
    for alternative, manifests in rendered.items():
        directory = os.path.join(out_dir, alternative)
        os.makedirs(directory, exist_ok=True)
        for manifest in manifests:
            path = os.path.join(directory, f"{manifest['kind'].lower()}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(dump([manifest]))
            paths.append(path)
        path = os.path.join(out_dir, f"{alternative}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(dump(manifests))
        paths.append(path)
    return paths


def write_rule_file(rule_file: Mapping[str, Any], out_dir: str) -> str:
    """``<out>/prometheus-rules.yaml``: the rule groups for Prometheus' ``rule_files``."""
    path = os.path.join(out_dir, RULE_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump([rule_file]))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.k8s", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m serving.k8s --config configs/taxi.yaml --out build/k8s\n"
               "  python -m serving.k8s --config configs/taxi.yaml --out build/k8s --stable 3 --canary 4\n"
               "  python -m serving.k8s --config configs/taxi.yaml --out build/k8s "
               "--set serving.kubernetes.storage_uri=pvc://models/taxi")
    add_config_arguments(parser, tune_flag=False)
    parser.add_argument("--out", default="build/k8s", help="output directory (default: build/k8s)")
    parser.add_argument("--stable", type=int, help="serve exactly this version under the 'stable' label")
    parser.add_argument("--canary", type=int, help="also serve this version under the 'canary' label")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, require_data=False)
        rendered = render.render(cfg, stable=args.stable, canary=args.canary)
        rendered[render.MONITORING] = render.monitoring_manifests(cfg)
        for manifests in rendered.values():
            validate.check_all(manifests)
        plain_rules = rules.rule_file(cfg)
        validate.check_rule_groups(plain_rules.get("groups"), RULE_FILE)
    except (ConfigError, ModelsConfigError, validate.ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in write(rendered, args.out) + [write_rule_file(plain_rules, args.out)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
