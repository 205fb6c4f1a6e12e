"""Runs ``--help`` of many command-line entry points in one process, without TensorFlow.

Why one process: starting Python and importing our packages once is fast, but each
CLI in its own process would pay that again, and a CLI that imports TensorFlow,
TFX or Beam at start-up costs 10-30 s more. So the heavy frameworks are refused
here: an entry point that needs one before it parses its arguments is reported as
``heavy`` (the caller then checks it from its source), every other one really runs
its argument parser on ``--help``.

Protocol (``python -m testing.cli_probe RESULTS.json`` from the repo root): stdin
is a JSON list of ``{"kind": "module"|"script", "target": ..., "args": [...]}``;
RESULTS.json gets a list of ``{"status": "ok"|"heavy"|"failed", "code": ..., "output": ...}``
in the same order (a file, not stdout, which the probed code may write to). ``args`` are the
leading arguments (a subcommand) put before ``--help``.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import io
import json
import os
import runpy
import sys
import traceback
from typing import Any, Dict, List

HEAVY_PACKAGES = ("tensorflow", "tensorflow_transform", "tensorflow_data_validation",
                  "tensorflow_model_analysis", "tfx", "apache_beam", "kfp", "tf_keras", "keras")


class HeavyImport(BaseException):
    """Raised for a refused import; a BaseException, so no ``except Exception`` swallows it."""


class _RefuseHeavy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY_PACKAGES:
            raise HeavyImport(name)
        return None


def probe(kind: str, target: str, args: List[str]) -> Dict[str, Any]:
    """``target --help`` with ``args`` before it; SystemExit(0) from argparse is success."""
    out = io.StringIO()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [target, *args, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if kind == "module":
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:  # a script: its own directory first on sys.path, as `python script.py` does
                sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
                runpy.run_path(target, run_name="__main__")
        return {"status": "failed", "code": None,
                "output": out.getvalue() + "\n(ran to the end without parsing --help)"}
    except HeavyImport as e:
        return {"status": "heavy", "code": None, "output": f"imports {e} at start-up"}
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) or e.code is None else 1
        return {"status": "ok" if code == 0 else "failed", "code": code, "output": out.getvalue()}
    except Exception:  # noqa: BLE001 - reported to the test, which names the command
        return {"status": "failed", "code": None, "output": out.getvalue() + traceback.format_exc()}
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def main() -> int:
    sys.meta_path.insert(0, _RefuseHeavy())
    requests = json.load(sys.stdin)
    results = [probe(r["kind"], r["target"], list(r.get("args", ()))) for r in requests]
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
