"""Command line: ``python -m serving start|predict|rollout|feedback|join``.

Examples:
  python -m serving start --config configs/taxi.yaml                 # in-process, :8501
  python -m serving start --config configs/taxi.yaml --backend proxy --proxy_url http://tf-serving:8501
  python -m serving predict --config configs/taxi.yaml --json request.json
  python -m serving predict --config configs/taxi.yaml --csv rows.csv --label canary
  SERVING_ADMIN_TOKEN=... python -m serving rollout --config configs/taxi.yaml canary 10
  SERVING_ADMIN_TOKEN=... python -m serving rollout --config configs/taxi.yaml promote | rollback | shadow 7
  python -m serving feedback labels.csv --config configs/taxi.yaml  # request_id,label[,row] per line
  python -m serving join --config configs/taxi.yaml --span 480000   # labelled span for ExampleGen

``start`` takes the model base path (``<serving.push_dir>/<model_name>``), the
schema, batching, limits and request log from the dataset config; flags
override single values (``--model_base_path``/``--model_name`` work without a
config, like TF Serving's own flags).
"""
import argparse
import csv
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from common.config import ConfigError, PipelineConfig
from common.loader import load_config
from common.paths import resolve_path
from common.process_exit import exit_now
from serving.http_limits import EVENT_LOOPS, HttpLimits

DEFAULT_PORT = 8501


def models_config_path(cfg: PipelineConfig) -> str:
    """``<serving.push_dir>/models.config``: beside the model base paths, as in TF Serving's
    usual ``/models/models.config`` layout."""
    return os.path.join(resolve_path(cfg.serving.push_dir), "models.config")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="dataset config, e.g. configs/taxi.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. serving.push_dir=/tmp/serving")


def _load(args: argparse.Namespace) -> Optional[PipelineConfig]:
    return load_config(args.config, args.overrides, require_data=False) if args.config else None


# HTTP limits of ``start``: flag -> (HttpLimits field, type, help).
HTTP_LIMIT_FLAGS = {
    "max_connections": ("max_connections", int,
                        "open connections or in-flight requests beyond this get 503"),
    "head_timeout_seconds": ("head_timeout_s", float,
                             "time a client has to send a request's line and headers"),
    "body_timeout_seconds": ("body_timeout_s", float,
                             "time a client has to send a request's body (then 408)"),
    "keep_alive_seconds": ("keep_alive_s", float, "idle keep-alive connections are closed after this"),
    "worker_threads": ("worker_threads", int, "threads running request handlers"),
    "shutdown_grace_seconds": ("shutdown_grace_s", float,
                               "on SIGTERM, time in-flight requests get to finish"),
    "event_loop": ("event_loop", str, "the server's event loop"),
}
# Flags that take one of a few values: argparse lists them in --help and refuses others.
HTTP_LIMIT_CHOICES = {"event_loop": EVENT_LOOPS}


def _add_http_limits(parser: argparse.ArgumentParser) -> None:
    """HTTP-level limits of ``start`` (defaults: ``serving.http_limits.HttpLimits``)."""
    group = parser.add_argument_group("HTTP limits")
    for flag, (field, kind, text) in HTTP_LIMIT_FLAGS.items():
        group.add_argument(f"--{flag}", type=kind, default=getattr(HttpLimits(), field), help=text,
                           choices=HTTP_LIMIT_CHOICES.get(flag))


def _http_limits(args: argparse.Namespace) -> HttpLimits:
    return HttpLimits(**{field: getattr(args, flag) for flag, (field, _, _) in HTTP_LIMIT_FLAGS.items()})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    start = sub.add_parser("start", help="serve the model repository over TF Serving's REST API")
    _add_common(start)
    start.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to accept remote clients")
    start.add_argument("--port", type=int, help="default: serving.rest_port (8501); 0 = any free port")
    start.add_argument("--backend", choices=("inprocess", "proxy"), default="inprocess")
    start.add_argument("--proxy_url", default="", help="TF Serving REST URL for --backend proxy")
    start.add_argument("--model_name", help="default: serving.model_name")
    start.add_argument("--model_base_path", help="default: <serving.push_dir>/<model_name>")
    start.add_argument("--models_config", help="TF Serving models.config (labels, served versions); "
                                               "default: <serving.push_dir>/models.config")
    start.add_argument("--schema", help="schema.pbtxt to validate requests against (default: the "
                                        "config's schema)")
    start.add_argument("--poll_seconds", type=float, default=1.0,
                       help="how often to look for new versions and models.config changes")
    start.add_argument("--no_batching", action="store_true", help="disable server-side batching")
    start.add_argument("--request_log_dir", help="default: serving.request_log_dir")
    start.add_argument("--no_request_log", action="store_true", help="do not log requests")
    start.add_argument("--request_log_writer", choices=("process", "thread"), default="process",
                       help="where logged rows are encoded and written: a child process, off the "
                            "gateway's GIL (default), or a thread of the gateway (serving.log_process)")
    _add_http_limits(start)

    predict = sub.add_parser("predict", help="send rows to a running gateway, print the answer")
    _add_common(predict)
    predict.add_argument("--url", help="gateway URL (default http://127.0.0.1:<serving.rest_port>)")
    predict.add_argument("--model", help="default: serving.model_name")
    target = predict.add_mutually_exclusive_group()
    target.add_argument("--version", type=int)
    target.add_argument("--label")
    predict.add_argument("--verb", choices=("predict", "classify", "regress"), default="predict")
    predict.add_argument("--signature_name")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", help="a request body, or a JSON list of rows")
    source.add_argument("--csv", help="CSV with a header of feature names; one row per instance")

    rollout = sub.add_parser("rollout", help="canary, shadow, promote (blue-green), rollback")
    _add_common(rollout)
    rollout.add_argument("--url", help="gateway URL (default http://127.0.0.1:<serving.rest_port>)")
    rollout.add_argument("--model", help="default: serving.model_name")
    rollout.add_argument("--token_env", help="env variable holding the admin token "
                                             "(default: serving.admin_token_env)")
    rollout.add_argument("action", choices=("canary", "shadow", "promote", "rollback", "clear",
                                            "status"))
    rollout.add_argument("value", nargs="?", type=float,
                         help="canary: percent of traffic; shadow: version")
    rollout.add_argument("--version", type=int, help="canary: the version (default: newest)")

    feedback = sub.add_parser("feedback", help="store labels for logged requests from a CSV file "
                                               "(columns request_id, label[, row])")
    _add_common(feedback)
    feedback.add_argument("csv", help="CSV with a header: request_id,label[,row]")
    feedback.add_argument("--model", help="default: serving.model_name")
    feedback.add_argument("--request_log_dir", help="default: serving.request_log_dir")

    join = sub.add_parser("join", help="join labels with the request log into labelled spans "
                                       "(<request_log_dir>/labelled/span-N/version-V/)")
    _add_common(join)
    join.add_argument("--span", type=int, action="append",
                      help="span to join (repeatable; default: every span with labels)")
    join.add_argument("--request_log_dir", help="default: serving.request_log_dir")
    return parser


def _start(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> int:
    from serving.server import serve

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args, cfg)
    if settings is None:
        print("error: give --config, or --model_name and --model_base_path", file=sys.stderr)
        return 2
    return serve(settings)


def start_settings(argv: Sequence[str]) -> Any:
    """The ``GatewaySettings`` that ``python -m serving start <argv>`` would serve with
    (``bench/serving_bench.py`` builds the same gateway in-process to time its stages)."""
    args = _parser().parse_args(["start", *argv])
    settings = _settings(args, _load(args))
    if settings is None:
        raise ValueError("give --config, or --model_name and --model_base_path")
    return settings


def _settings(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> Any:
    """``start``'s flags and config as ``GatewaySettings``; None without a model to serve."""
    from common.config import BatchingConfig
    from serving.api.deps import Limits
    from serving.feedback.settings import FeedbackSettings
    from serving.server import GatewaySettings

    name = args.model_name or (cfg.serving.model_name if cfg else None)
    base = args.model_base_path or (cfg.push_dir if cfg else None)
    if not name or (not base and args.backend == "inprocess"):
        return None
    serving = cfg.serving if cfg else None
    batching = serving.batching if serving else BatchingConfig()
    if args.no_batching:
        batching = BatchingConfig(enabled=False)
    log_dir = None
    if not args.no_request_log and (args.request_log_dir or serving):
        log_dir = args.request_log_dir or resolve_path(serving.request_log_dir)
    features = tuple((f.name, f.dtype) for f in cfg.features) if cfg else ()
    feedback = FeedbackSettings.from_config(cfg, args.schema) if cfg and log_dir else None
    return GatewaySettings(
        model_name=name, model_base_path=os.path.abspath(base) if base else "",
        models_config=args.models_config or (models_config_path(cfg) if cfg else None),
        schema_path=args.schema or (cfg.schema_path if cfg else None),
        backend=args.backend, proxy_url=args.proxy_url, host=args.host,
        port=args.port if args.port is not None else (serving.rest_port if serving else DEFAULT_PORT),
        batching=batching,
        limits=Limits(serving.max_request_bytes, serving.max_batch_rows) if serving else Limits(),
        http=_http_limits(args),
        poll_interval_s=args.poll_seconds,
        admin_token_env=serving.admin_token_env if serving else "SERVING_ADMIN_TOKEN",
        request_log_dir=log_dir,
        request_log_window_seconds=serving.request_log_window_seconds if serving else 3600,
        request_log_flush_seconds=serving.request_log_flush_seconds if serving else 1.0,
        request_log_writer=args.request_log_writer,
        feature_dtypes=features,
        sensitive_features=tuple(sorted(serving.sensitive_features.items())) if serving else (),
        feedback=feedback)


def _url(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> str:
    if args.url:
        return args.url
    return f"http://127.0.0.1:{cfg.serving.rest_port if cfg else DEFAULT_PORT}"


def _model(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> str:
    if args.model:
        return args.model
    if cfg is None:
        raise ConfigError("give --model or --config")
    return cfg.serving.model_name


def _typed(value: str, dtype: Optional[str], column: str, path: str) -> Any:
    if dtype == "string":
        return value
    try:
        if dtype == "int":
            return int(float(value))
        if dtype == "float":
            return float(value)
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        if dtype:
            raise ValueError(f"{path}: column '{column}' is declared {dtype} in the config but "
                             f"holds {value!r}") from None
        return value


def read_rows(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> List[Dict[str, Any]]:
    """CSV rows as instances: empty cells omitted, types from the config's feature dtypes."""
    dtypes = {f.name: f.dtype for f in cfg.features} if cfg else {}
    with open(args.csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [{k: _typed(v, dtypes.get(k), k, args.csv) for k, v in row.items() if v not in ("", None)}
                for row in reader]
    if not rows:
        raise ValueError(f"{args.csv}: no rows under the header")
    return rows


def _predict(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> int:
    from serving.client import Client

    if args.json:
        with open(args.json, encoding="utf-8") as f:
            body = json.load(f)
        if isinstance(body, list):
            body = {"examples" if args.verb != "predict" else "instances": body}
    else:
        rows = read_rows(args, cfg)
        body = {"examples" if args.verb != "predict" else "instances": rows}
    if args.signature_name:
        body["signature_name"] = args.signature_name
    path = f"/v1/models/{_model(args, cfg)}"
    if args.version:
        path += f"/versions/{args.version}"
    elif args.label:
        path += f"/labels/{args.label}"
    with Client(_url(args, cfg)) as client:
        status, answer, _ = client.request("POST", f"{path}:{args.verb}", body)
    print(json.dumps(answer, indent=1))
    return 0 if status == 200 else 1


def _rollout(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> int:
    from serving.client import Client

    token_env = args.token_env or (cfg.serving.admin_token_env if cfg else "SERVING_ADMIN_TOKEN")
    token = os.environ.get(token_env)
    if not token:
        print(f"error: set ${token_env} to the gateway's admin token", file=sys.stderr)
        return 2
    path = f"/v1/admin/models/{_model(args, cfg)}/rollout"
    body: Dict[str, Any] = {}
    if args.action == "canary":
        if args.value is None:
            print("error: rollout canary needs a percent, e.g. 'rollout canary 10'", file=sys.stderr)
            return 2
        body["percent"] = args.value
        if args.version:
            body["version"] = args.version
    elif args.action == "shadow" and (args.value is not None or args.version):
        body["version"] = int(args.version or args.value)
    headers = {"Authorization": f"Bearer {token}"}
    with Client(_url(args, cfg)) as client:
        if args.action == "status":
            status, answer, _ = client.request("GET", path, headers=headers)
        else:
            status, answer, _ = client.request("POST", f"{path}:{args.action}", body, headers=headers)
    print(json.dumps(answer, indent=1))
    return 0 if status == 200 else 1


def _feedback_parts(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> Tuple[Any, str]:
    """(label spec, request log dir) for ``feedback`` and ``join``, from the dataset config."""
    from serving.feedback.labels import LabelSpec

    if cfg is None:
        raise ConfigError("give --config: its label section says what a label is")
    return LabelSpec.from_config(cfg), args.request_log_dir or resolve_path(cfg.serving.request_log_dir)


def _bulk_feedback(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> int:
    from serving.feedback.bulk import import_csv
    from serving.feedback.service import Feedback

    spec, log_dir = _feedback_parts(args, cfg)
    feedback = Feedback.open(log_dir, spec, cfg.serving.request_log_window_seconds,
                             cfg.serving.feedback_window_spans, cfg.serving.feedback_max_request_ids)
    report = import_csv(args.csv, _model(args, cfg), feedback)
    print("\n".join(report.summary()))
    return 1 if report.errors else 0


def _join(args: argparse.Namespace, cfg: Optional[PipelineConfig]) -> int:
    from serving.feedback.join import join_span
    from serving.feedback.store import list_feedback_spans

    spec, log_dir = _feedback_parts(args, cfg)
    spans = args.span or list_feedback_spans(log_dir)
    if not spans:
        print(f"error: no labels under {log_dir}/feedback", file=sys.stderr)
        return 1
    for span in spans:
        print(json.dumps(join_span(log_dir, span, spec).to_dict()))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = _load(args)
        if args.command == "start":
            return _start(args, cfg)
        if args.command == "predict":
            return _predict(args, cfg)
        if args.command == "feedback":
            return _bulk_feedback(args, cfg)
        if args.command == "join":
            return _join(args, cfg)
        return _rollout(args, cfg)
    except (ConfigError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def exit_with(argv: Sequence[str]) -> None:
    """Runs ``main(argv)`` and ends the process with its code (``python -m serving`` and
    ``python -m serving.warm_start`` both end here).

    After ``start``, serve() has closed the backend, the request log and its files:
    the process ends without the interpreter's teardown of TensorFlow (about 1 s
    before a stopped gateway exits; ``common.process_exit``).
    """
    code = main(argv)
    if list(argv[:1]) == ["start"]:
        exit_now(code)
    sys.exit(code)
