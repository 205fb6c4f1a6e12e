"""The command-line arguments every runner shares: the dataset config and its overrides."""
from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser, tune_flag: bool = True) -> None:
    """``--config``, repeatable ``--set KEY=VALUE`` and (optionally) ``--no-tune``."""
    parser.add_argument("--config", required=True, help="dataset config, e.g. configs/taxi.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. trainer.train_steps=200 (repeatable)")
    if tune_flag:
        parser.add_argument("--no-tune", dest="tune", action="store_false", default=None,
                            help="skip the Tuner; reuse the last best hyperparameters")
