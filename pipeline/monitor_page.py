"""The page `leather monitor` writes: the skew table, and each descriptor's distributions side by side.

The histograms drawn are the ones TFDV compared (the statistics' standard
histograms), each scaled to shares of its photos so a log of 200 photos and a
training set of 20,000 sit on one axis.
"""
from __future__ import annotations

import html
import pathlib

from matplotlib.figure import Figure
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.evaluation.render import html_image, html_page, html_table, write_page
from models.divergence import DivergenceRow

PAGE_NAME = "monitor.html"
FIGURE_NAME = "descriptors.png"
COLOURS = {"training": "#1f77b4", "served": "#ff7f0e"}
STYLE = "tr.skew td { background: #fde2e1; }"


def _histogram(statistics: statistics_pb2.DatasetFeatureStatisticsList, name: str) -> list[tuple[float, float, float]]:
    """(low, high, share of photos) per bucket of the feature's standard histogram; empty when there is none."""
    for feature in statistics.datasets[0].features:
        if ".".join(feature.path.step) == name:
            stats = feature.num_stats
            for histogram in stats.histograms:
                if histogram.type == statistics_pb2.Histogram.STANDARD:
                    total = sum(b.sample_count for b in histogram.buckets) or 1.0
                    return [(b.low_value, b.high_value, b.sample_count / total) for b in histogram.buckets]
    return []


def _figure(
    rows: list[DivergenceRow],
    training: statistics_pb2.DatasetFeatureStatisticsList,
    served: statistics_pb2.DatasetFeatureStatisticsList,
) -> Figure:
    columns = 4
    lines = -(-len(rows) // columns)
    figure = Figure(figsize=(4 * columns, 3.2 * lines), dpi=100, layout="constrained")
    axes_grid = figure.subplots(lines, columns, squeeze=False)
    for axes, row in zip(axes_grid.flat, rows):
        for role, statistics in (("training", training), ("served", served)):
            buckets = _histogram(statistics, row.feature)
            if buckets:
                edges = [low for low, _, _ in buckets] + [buckets[-1][1]]
                shares = [share for _, _, share in buckets]
                axes.stairs(shares, edges, color=COLOURS[role], label=role, linewidth=2)
        verdict = "SKEW" if row.beyond else "ok"
        axes.set_title(f"{row.feature}\n{row.measure} {row.divergence:.3f} (bound {row.bound:g}): {verdict}", fontsize="small")
        axes.set_ylabel("share of photos")
        axes.legend(fontsize="x-small")
        axes.grid(alpha=0.3)
    for axes in list(axes_grid.flat)[len(rows) :]:
        axes.set_visible(False)
    return figure


def write_monitor_page(
    out_dir: pathlib.Path,
    rows: list[DivergenceRow],
    training: statistics_pb2.DatasetFeatureStatisticsList,
    served: statistics_pb2.DatasetFeatureStatisticsList,
    facts: dict[str, str],
) -> pathlib.Path:
    """Writes the page and its figure into `out_dir`; `facts` (log, statistics, photo counts) head the page."""
    table = html_table(
        ["feature", "measure", "divergence", "bound", "verdict"],
        [[html.escape(r.feature), html.escape(r.measure), f"{r.divergence:.4f}", f"{r.bound:g}", "SKEW" if r.beyond else "ok"]
         for r in rows],
        row_classes=["skew" if r.beyond else "" for r in rows],
    )
    listing = "".join(f"<li>{html.escape(key)}: <code>{html.escape(value)}</code></li>" for key, value in facts.items())
    body = (
        "<h1>Served photos against the training photos</h1>"
        f"<ul>{listing}</ul>{table}{html_image(FIGURE_NAME, 'descriptor distributions, training beside served')}"
    )
    figures = {FIGURE_NAME: _figure(rows, training, served)}
    return write_page(out_dir, PAGE_NAME, html_page("leather monitor", body, STYLE), figures)
