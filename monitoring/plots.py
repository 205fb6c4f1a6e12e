"""The monitoring report's pictures: matplotlib figures embedded as base64 PNG data URIs.

One self-contained HTML file to open or attach, as the run report does
(``pipeline/html_report.py``). Every function returns an ``<img>`` tag.
"""
from __future__ import annotations

import base64
import io
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

Series = Mapping[str, Tuple[Sequence[int], Sequence[float]]]   # name -> (spans, values)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image(fig) -> str:
    """The figure as an ``<img>`` with a PNG data URI (the figure is closed)."""
    plt = _pyplot()
    out = io.BytesIO()
    try:
        fig.savefig(out, format="png", dpi=72)
    finally:
        plt.close(fig)
    return f"<img alt='' src='data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}'>"


def _integer_spans(ax) -> None:
    """Span numbers as plain integers on the x axis (no offset, no fractional ticks)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")


def _grid(count: int, columns: int = 4, size: Tuple[float, float] = (3.4, 2.3)):
    plt = _pyplot()
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    # Fixed margins: tight_layout costs seconds per grid (it measures every tick label).
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12 / rows, top=1 - 0.08 / rows,
                        wspace=0.35, hspace=0.65)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def distances_over_spans(panels: Mapping[str, Mapping[str, Tuple[List[int], List[float],
                                                                   Optional[float]]]],
                         ylabel: str) -> str:
    """One panel per feature: each comparator's distance over spans, its threshold dashed.

    ``panels``: feature -> comparator -> (spans, distances, last threshold or None).
    """
    fig, axes = _grid(len(panels))
    colours = {"skew": "tab:blue", "drift": "tab:orange"}
    for ax, (feature, lines) in zip(axes, sorted(panels.items())):
        for comparator, (spans, values, threshold) in sorted(lines.items()):
            colour = colours.get(comparator, "tab:grey")
            ax.plot(spans, values, marker="o", ms=3, color=colour, label=comparator)
            if threshold is not None:
                ax.axhline(threshold, color=colour, ls="--", lw=1)
        ax.set_title(feature, fontsize=9)
        ax.set_xlabel("span", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        _integer_spans(ax)
        ax.legend(fontsize=7)
    return image(fig)


def histograms(feature: str, reference: pd.Series, span: pd.Series, categorical: bool,
               title: str) -> str:
    """The reference's and the span's distribution of one feature, side by side, same axes."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.0), sharey=True)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.3, top=0.88, wspace=0.08)
    ref_values, span_values = reference.dropna(), span.dropna()
    if categorical:
        ref_shares = ref_values.astype(str).value_counts(normalize=True)
        span_shares = span_values.astype(str).value_counts(normalize=True)
        order = list((ref_shares.add(span_shares, fill_value=0)).sort_values(ascending=False).index[:12])
        for ax, shares in ((left, ref_shares), (right, span_shares)):
            ax.bar(range(len(order)), [shares.get(v, 0.0) for v in order])
            ax.set_xticks(range(len(order)), [v[:14] for v in order], rotation=40, ha="right", fontsize=7)
    else:
        both = np.concatenate([ref_values.astype(float).to_numpy(), span_values.astype(float).to_numpy()])
        edges = np.histogram_bin_edges(both, bins=20) if both.size else np.linspace(0, 1, 21)
        for ax, values in ((left, ref_values), (right, span_values)):
            ax.hist(values.astype(float), bins=edges, weights=np.full(len(values), 1.0 / max(len(values), 1)))
            ax.tick_params(labelsize=7)
    left.set_title(f"{feature}: reference ({len(ref_values)} values)", fontsize=9)
    right.set_title(f"{feature}: {title} ({len(span_values)} values)", fontsize=9)
    left.set_ylabel("share", fontsize=8)
    return image(fig)


def shares_over_spans(spans: Sequence[int], shares: Sequence[Sequence[float]],
                      class_names: Sequence[str]) -> str:
    """Predicted-class shares per span, stacked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(spans) + 3), 3.0))
    fig.subplots_adjust(left=0.12, right=0.72, bottom=0.25, top=0.95)
    bottom = np.zeros(len(spans))
    positions = np.arange(len(spans))
    for k, name in enumerate(class_names):
        heights = np.array([s[k] for s in shares])
        ax.bar(positions, heights, bottom=bottom, label=name)
        bottom += heights
    ax.set_xticks(positions, [str(s) for s in spans], rotation=40, ha="right", fontsize=7)
    ax.set_xlabel("span", fontsize=8)
    ax.set_ylabel("share of predictions", fontsize=8)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return image(fig)


def accuracy_over_spans(series: Dict[str, Tuple[List[int], List[float]]], floor: float) -> str:
    """Labelled accuracy per version over spans, the floor dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.0))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.18, top=0.95)
    for name, (spans, values) in sorted(series.items()):
        ax.plot(spans, values, marker="o", ms=4, label=name)
    ax.axhline(floor, color="tab:red", ls="--", lw=1, label=f"floor {floor:.2f}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("span", fontsize=8)
    ax.set_ylabel("accuracy on labelled rows", fontsize=8)
    _integer_spans(ax)
    ax.legend(fontsize=7)
    return image(fig)
