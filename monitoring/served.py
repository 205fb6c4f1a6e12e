"""A span of the request log as monitoring reads it: raw feature rows, versions, model outputs.

The gateway logs each answered row as a tf.Example (``serving.request_log``):
the raw features as received (sensitive ones dropped or hashed) plus
``__log_*`` metadata: request id, row, model, version, role and the model's
output. Monitoring reads the *primary* rows only (the answers clients got;
shadow answers are never seen by anyone) of one model, and turns them into:

* a frame of raw columns, one row per served row, ready for
  ``monitoring.frames.typed_frame`` (so span statistics are made exactly as
  the history's are);
* per row, the request id and row index (the key feedback labels use), the
  model version that answered and the output vector.

Which spans: a span is complete once its window has ended
(``request_log.closed_spans``); the default span of a check is the newest
closed one, and drift compares it with the closest older span that holds
rows of the same model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from serving import request_log

Key = Tuple[str, int]


class NoServedRows(ValueError):
    """A span holds no primary row of the model (the message names the models it holds)."""


@dataclass(frozen=True)
class ServedSpan:
    """The primary rows one model answered in one span of the request log."""
    span: int
    model: str
    frame: pd.DataFrame                 # raw columns as logged (missing = None)
    keys: Tuple[Key, ...]               # (request id, row) per row, as feedback labels name rows
    versions: Tuple[int, ...]           # the model version that answered each row
    outputs: Tuple[Tuple[float, ...], ...]  # each row's model output, flattened
    # each row as a serialized tf.Example without the log's metadata (read_span(examples=True))
    examples: Tuple[bytes, ...] = ()

    def __len__(self) -> int:
        return len(self.keys)

    def version_counts(self) -> Dict[int, int]:
        """Rows answered per model version, most rows first."""
        counts: Dict[int, int] = {}
        for version in self.versions:
            counts[version] = counts.get(version, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    @property
    def main_version(self) -> Optional[int]:
        """The version that answered most rows (the one feature alerts are filed under)."""
        counts = self.version_counts()
        return next(iter(counts)) if counts else None


def _values(feature: Any) -> List[Any]:
    kind = feature.WhichOneof("kind")
    if kind is None:
        return []
    values = list(getattr(feature, kind).value)
    if kind == "bytes_list":
        return [v.decode("utf-8", errors="replace") for v in values]
    return values


def _output(features: Any) -> Tuple[float, ...]:
    """The logged output: ``__log_output``, or of a dict output its ``outputs`` key (the
    key the exported models use), else its only key. A classify answer (``[[class,
    score], ...]``, logged as JSON) gives its scores in the answer's class order."""
    if request_log.OUTPUT in features:
        values = _values(features[request_log.OUTPUT])
    else:
        keys = sorted(k for k in features if k.startswith(request_log.OUTPUT + "_"))
        preferred = request_log.OUTPUT + "_outputs"
        if preferred in keys:
            keys = [preferred]
        if len(keys) != 1:
            raise ValueError(f"logged row has no single model output (output features: {keys})")
        values = _values(features[keys[0]])
    if len(values) == 1 and isinstance(values[0], str):
        values = _scores_of(values[0])
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"logged output {values[:4]!r} is not numeric") from None


def _scores_of(text: str) -> List[Any]:
    """The scores of a classify answer logged as JSON (``[[class, score], ...]``)."""
    try:
        answer = json.loads(text)
    except ValueError:
        raise ValueError(f"logged output {text[:80]!r} is neither numbers nor JSON") from None
    if isinstance(answer, list) and all(isinstance(p, list) and len(p) == 2 for p in answer):
        return [score for _, score in answer]
    return answer if isinstance(answer, list) else [answer]


def read_span(log_dir: str, span: int, model: str, columns: Sequence[str],
              examples: bool = False) -> ServedSpan:
    """Span ``span`` of the request log in ``log_dir``: the primary rows of ``model``.

    ``columns``: the raw columns to keep (a column a row lacks is None; a
    multi-valued one keeps its first value: monitored features are univalent).
    ``examples``: also keep each row as the model reads it (a tf.Example without
    the log's metadata), for replaying the span through model versions.
    Raises ``NoServedRows`` when the span holds no row of ``model``.
    """
    rows: List[Dict[str, Any]] = []
    keys: List[Key] = []
    versions: List[int] = []
    outputs: List[Tuple[float, ...]] = []
    serialized: List[bytes] = []
    others: Dict[str, int] = {}
    for example in request_log.iter_window(log_dir, span, role="primary"):
        features = example.features.feature
        logged_model = _values(features[request_log.MODEL])[0] if request_log.MODEL in features else ""
        if logged_model != model:
            others[logged_model] = others.get(logged_model, 0) + 1
            continue
        row = {}
        for name in columns:
            values = _values(features[name]) if name in features else []
            row[name] = values[0] if values else None
        rows.append(row)
        keys.append((_values(features[request_log.REQUEST_ID])[0],
                     int(_values(features[request_log.ROW])[0])))
        versions.append(int(_values(features[request_log.VERSION])[0]))
        outputs.append(_output(features))
        if examples:
            for name in [n for n in features if request_log.is_metadata(n)]:
                del features[name]
            serialized.append(example.SerializeToString())
    if not rows:
        where = request_log.span_dir(log_dir, span)
        held = f"rows of other models {others}" if others else "no primary rows"
        raise NoServedRows(f"{where}: no primary row of model {model!r} ({held})")
    return ServedSpan(span, model, pd.DataFrame(rows, columns=list(columns)), tuple(keys),
                      tuple(versions), tuple(outputs), tuple(serialized))


def spans_of(log_dir: str, window_seconds: int, now: Optional[float] = None) -> List[int]:
    """The closed spans of the request log, oldest first."""
    return request_log.closed_spans(log_dir, window_seconds, now)


def choose_span(log_dir: str, window_seconds: int, span: Optional[int] = None,
                now: Optional[float] = None) -> int:
    """``span`` if given (it must exist), else the newest closed span."""
    present = request_log.list_spans(log_dir)
    if span is not None:
        if span not in present:
            raise ValueError(f"{log_dir}: no span {span} in the request log (spans: "
                             f"{present[-10:]}{' ...' if len(present) > 10 else ''})")
        return span
    closed = spans_of(log_dir, window_seconds, now)
    if not closed:
        raise ValueError(f"{log_dir}: no closed span in the request log yet (spans: {present}; "
                         f"a span closes when its {window_seconds} s window ends)")
    return closed[-1]


def previous_span(log_dir: str, span: int, model: str, columns: Sequence[str],
                  skip: Collection[int] = ()) -> Optional[ServedSpan]:
    """The closest span before ``span`` holding rows of ``model`` and not in ``skip``, or None.

    ``skip``: spans not to compare with (the check passes its recorded data incidents:
    drift measured against a broken upstream's span would flag the recovery as a shift).
    """
    for earlier in reversed([s for s in request_log.list_spans(log_dir) if s < span and s not in skip]):
        try:
            return read_span(log_dir, earlier, model, columns)
        except NoServedRows:
            continue
    return None



# Public names for readers of single logged rows (``monitoring.canary``).
feature_values = _values
logged_output = _output
