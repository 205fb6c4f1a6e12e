"""The run's HTML report: headline figures, confusion matrix, calibration, slices and fairness.

Everything is read back from the run's artifacts (TFMA's evaluation, the
baselines, ErrorAnalysis), so the report shows what ML Metadata tracks. The
pictures are matplotlib PNGs embedded as data URIs: one self-contained file
to open or attach, no server.
"""
from __future__ import annotations

import base64
import html
import io
import re
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from common.config import PipelineConfig
from pipeline.figures import figure
from pipeline.results import RunResult

_TOP_SLICES = 12  # values per slice feature shown (by example count)
_ACCURACY_KEYS = ("sparse_categorical_accuracy", "binary_accuracy", "accuracy")


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "<img src='data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode() + "'>"


def slice_rows(evaluation_uri: str) -> List[Tuple[str, str, str, str, float]]:
    """TFMA's slicing metrics as (slice column, value, sub key, metric, value) rows;
    the overall slice is ('', '')."""
    from components.evaluation import load_candidate_result

    rows = []
    for slice_key, metrics in load_candidate_result(evaluation_uri).slicing_metrics:
        if len(slice_key) > 1:
            continue
        column, value = (slice_key[0][0], str(slice_key[0][1])) if slice_key else ("", "")
        for output in metrics.values():
            for sub_key, by_name in output.items():
                for name, v in by_name.items():
                    if isinstance(v, dict) and "doubleValue" in v:
                        rows.append((column, value, sub_key, name, float(v["doubleValue"])))
    return rows


def confusion_matrix_png(matrix: List[List[int]], names: List[str], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.array(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2.5, 1.0 * len(names) + 1.8))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(counts[i, j])}\n{rates[i, j]:.0%}", ha="center", va="center",
                    fontsize=8, color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (row-normalised)")
    ax.set_title(title)
    return _png(fig)


def calibration_png(calibration: Dict[str, object], title: str) -> str:
    """Reliability diagram of P(positive): each bin's actual positive share against
    its mean predicted probability (the diagonal is a calibrated model), with the
    bins' row counts beneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    filled = [b for b in calibration["bins"] if b["examples"]]
    fig, (ax, counts) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="calibrated")
    ax.plot([b["mean_predicted"] for b in filled], [b["positive_share"] for b in filled],
            marker="o", label="model")
    ax.set_ylim(0, 1)
    ax.set_ylabel("actual positive share")
    ax.set_title(f"{title}\nexpected calibration error {calibration['expected_calibration_error']:.3f}")
    ax.legend(fontsize=8, loc="upper left")
    counts.bar([(b["low"] + b["high"]) / 2 for b in calibration["bins"]],
               [b["examples"] for b in calibration["bins"]], width=0.09, color="#88a")
    counts.set_xlim(0, 1)
    counts.set_xlabel("predicted P(positive)")
    counts.set_ylabel("rows")
    return _png(fig)


def _bars(labels: List[str], series: Dict[str, List[float]], title: str, counts: List[int]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(labels) + 2), 3.2))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for k, (name, values) in enumerate(series.items()):
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, [f"{lab}\n(n={n})" for lab, n in zip(labels, counts)], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def _accuracy_key(rows) -> str:
    names = {r[3] for r in rows}
    return next((k for k in _ACCURACY_KEYS if k in names), "")


def per_slice_section(cfg: PipelineConfig, rows) -> str:
    accuracy = _accuracy_key(rows)
    if not accuracy:
        return ""
    overall = next((r[4] for r in rows if r[0] == "" and r[2] == "" and r[3] == accuracy), None)
    parts = [f"<h2>Per-slice {accuracy} (eval split; overall {overall:.3f})</h2>" if overall is not None
             else f"<h2>Per-slice {accuracy}</h2>"]
    by_column: Dict[str, Dict[str, Dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for column, value, sub_key, name, v in rows:
        if column and sub_key == "":
            by_column[column][value][name] = v
    for column, values in by_column.items():
        top = sorted(values.items(), key=lambda kv: -kv[1].get("example_count", 0))[:_TOP_SLICES]
        top = [(v, m) for v, m in top if accuracy in m]
        if not top:
            continue
        parts.append(f"<h3>{html.escape(column)}</h3>")
        parts.append(_bars([v for v, _ in top], {accuracy: [m[accuracy] for _, m in top]},
                           f"{column}: top {len(top)} values by examples",
                           [int(m.get("example_count", 0)) for _, m in top]))
    return "\n".join(parts)


def fairness_section(cfg: PipelineConfig, rows, names: List[str]) -> str:
    """False-positive and false-negative rates per value of each fairness feature, at
    the 0.5 threshold: of the binary model, or of a multi-class model's binary fold."""
    parts = []
    for feature in cfg.evaluation.fairness_features:
        cells: Dict[str, Dict[str, Dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        counts: Dict[str, int] = {}
        for column, value, sub_key, name, v in rows:
            if column != feature:
                continue
            if name == "example_count" and sub_key == "":
                counts[value] = int(v)
            if name in ("fpr", "fnr"):
                cells[sub_key][value][name] = v
        if not cells:
            continue
        values = sorted(counts, key=lambda v: -counts[v])[:_TOP_SLICES]
        parts.append(f"<h2>Fairness by {html.escape(feature)}: false-positive and false-negative rates</h2>")
        for sub_key in sorted(cells):
            title = _class_title(sub_key, names, cfg.label.positive_classes)
            shown = [v for v in values if v in cells[sub_key]]
            parts.append(_bars(shown, {rate.upper(): [cells[sub_key][v].get(rate, 0.0) for v in shown]
                                       for rate in ("fpr", "fnr")},
                               f"{feature}: {title}", [counts[v] for v in shown]))
    return "\n".join(parts)


def _class_title(sub_key: str, names: List[str], positive_classes: Sequence[str] = ()) -> str:
    if not sub_key:
        if len(names) > 2 and positive_classes:  # the binary fold of a multi-class model
            return f"positive = {', '.join(positive_classes)}"
        return f"positive = {names[-1]}" if names else "binary"
    match = re.search(r"classId:(\d+)", sub_key)  # e.g. "classId:3 topK:1"
    if match:
        k = int(match.group(1))
        return f"class {names[k] if k < len(names) else k} vs rest (top-1)"
    return sub_key


def headline_table(result: RunResult) -> str:
    rows = []
    for split, figures in result.analysis.get("splits", {}).items():
        for variant, f in figures.items():
            rows.append((split, f"model ({variant.replace('_', ' ')})", f))
    for split, baselines in result.text_baselines.items():
        for name, f in baselines.items():
            rows.append((split, f"baseline: {name.replace('_', ' ')}", f))
    if not rows:
        return ""
    cell = lambda f, k: html.escape(figure(f.get(k)) or "–")  # noqa: E731
    ece = lambda f: cell(f.get("calibration") or {}, "expected_calibration_error")  # noqa: E731
    body = "".join(f"<tr><td>{s}</td><td>{html.escape(n)}</td><td>{cell(f, 'accuracy')}</td>"
                   f"<td>{cell(f, 'macro_f1')}</td><td>{cell(f, 'binary_accuracy')}</td>"
                   f"<td>{ece(f)}</td><td>{f.get('examples', '')}</td></tr>" for s, n, f in rows)
    return ("<h2>Headline figures</h2><table><tr><th>split</th><th>scorer</th><th>accuracy</th>"
            "<th>macro-F1</th><th>binary accuracy</th><th>calibration error (binary)</th>"
            f"<th>examples</th></tr>{body}</table>")


def write_report(cfg: PipelineConfig, result: RunResult, path: str, summary: str) -> str:
    """Writes the HTML report to ``path`` and returns it."""
    names = result.analysis.get("class_names", [])
    sections = [f"<h1>Run report: {html.escape(cfg.name)}</h1>",
                f"<pre>{html.escape(summary)}</pre>", headline_table(result)]
    eval_figures = result.analysis.get("splits", {}).get("eval", {})
    for variant, figures in eval_figures.items():
        sections.append(confusion_matrix_png(figures["confusion_matrix"], names,
                                             f"eval split, {variant.replace('_', ' ')}"))
        if "calibration" in figures:
            sections.append(calibration_png(figures["calibration"],
                                            f"eval split, {variant.replace('_', ' ')}"))
    if result.evaluation_uri:
        rows = slice_rows(result.evaluation_uri)
        sections += [per_slice_section(cfg, rows), fairness_section(cfg, rows, names)]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{display:block;margin:1em 0}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(cfg.name)} run"
                f"</title><style>{style}</style></head><body>{''.join(s for s in sections if s)}</body></html>")
    return path
