"""The report's plots, each returned as PNG bytes (Agg canvas, never pyplot): distributions per tracer, and TMTV on
tracer A vs tracer B per patient with the patients positive on one tracer only marked."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 90
#: TMTV axes are linear below 1 mL and logarithmic above (symlog): zero (negative on that tracer) stays on the plot.
LINEAR_BELOW_ML = 1.0
POSITIVE_STYLE = {
    "both": ("o", "#1f77b4", "positive on both"),
    "only_a": ("v", "#d62728", "only on A"),
    "only_b": ("s", "#2ca02c", "only on B"),
    "neither": ("x", "#7f7f7f", "negative on both"),
}


class PlainLogFormatter(ticker.LogFormatter):
    """matplotlib's choice of which log-axis ticks to label, written as plain numbers: "6", "0.5", "200", not
    "6×10⁰" (its default scientific notation, which reads as a typo on an axis in mL)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _plain_log_labels(axis) -> None:
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _strip(ax, groups: dict[str, np.ndarray], ylabel: str, log: bool) -> None:
    """Box plot with every value as a jittered dot (300 patients: the dots show the shape a box hides)."""
    names = list(groups)
    data = [groups[n] for n in names]
    ax.boxplot(data, showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)  # fixed jitter: the same tables give the same bytes
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(values)), values, s=6, alpha=0.5, color="#1f77b4", linewidths=0)
    ax.set_xticks(range(1, len(names) + 1), [f"{n}\n(n={len(groups[n])})" for n in names], fontsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    if log:
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis)
    ax.tick_params(labelsize=7)


def distributions(suv_max: dict[str, np.ndarray], mtv_ml: dict[str, np.ndarray], counts: dict[str, np.ndarray]
                  ) -> bytes:
    """SUVmax and MTV per lesion, lesion count per scan, one group per tracer (PNG)."""
    return _png(distributions_figure(suv_max, mtv_ml, counts))


def distributions_figure(suv_max: dict[str, np.ndarray], mtv_ml: dict[str, np.ndarray],
                         counts: dict[str, np.ndarray]) -> Figure:
    figure = Figure(figsize=(11, 3.4), dpi=DPI, facecolor="white")
    axes = figure.subplots(1, 3)
    _strip(axes[0], suv_max, "SUVmax per lesion (SUVbw)", log=False)
    _strip(axes[1], {k: v[v > 0] for k, v in mtv_ml.items()}, "MTV per lesion (mL, log)", log=True)
    _strip(axes[2], counts, "lesions per scan", log=False)
    axes[2].yaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # counts: 0, 1, 2, never 0.75
    axes[0].set_title("SUVmax", fontsize=9)
    axes[1].set_title("MTV", fontsize=9)
    axes[2].set_title("lesion count", fontsize=9)
    figure.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.9, wspace=0.3)
    return figure


def tmtv_pairs(frame: pd.DataFrame, tracer_a: str, tracer_b: str) -> bytes:
    """One dot per patient (and session): TMTV on A (x) vs on B (y); marker and colour by ``positive_on`` (PNG)."""
    return _png(tmtv_pairs_figure(frame, tracer_a, tracer_b))


def tmtv_pairs_figure(frame: pd.DataFrame, tracer_a: str, tracer_b: str) -> Figure:
    figure = Figure(figsize=(5.2, 4.6), dpi=DPI, facecolor="white")
    ax = figure.subplots()
    a = frame["tmtv_ml_a"].astype(float).fillna(0.0).to_numpy()
    b = frame["tmtv_ml_b"].astype(float).fillna(0.0).to_numpy()
    positive = frame["positive_on"].fillna("neither").astype(str).to_numpy()
    for value, (marker, colour, label) in POSITIVE_STYLE.items():
        chosen = positive == value
        if chosen.any():
            ax.scatter(a[chosen], b[chosen], marker=marker, color=colour, s=22, alpha=0.8,
                       label=f"{label} ({int(chosen.sum())})")
    top = max(float(np.nanmax(np.r_[a, b, 1.0])) * 1.5, 2.0)
    ax.plot([0, top], [0, top], color="#bbbbbb", linewidth=0.8, zorder=0)
    for axis in ("x", "y"):
        getattr(ax, f"set_{axis}scale")("symlog", linthresh=LINEAR_BELOW_ML)
        _plain_log_labels(getattr(ax, f"{axis}axis"))
    ax.set_xlim(-0.2, top)
    ax.set_ylim(-0.2, top)
    ax.set_xlabel(f"TMTV on A = {tracer_a} (mL)", fontsize=8)
    ax.set_ylabel(f"TMTV on B = {tracer_b} (mL)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left")
    figure.subplots_adjust(left=0.14, right=0.97, bottom=0.12, top=0.97)
    return figure
