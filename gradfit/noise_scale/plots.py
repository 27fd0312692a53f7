"""PNG plots of the steps-examples frontier and of B_simple over training.

matplotlib is imported only when a plot is made (``pip install 'gradfit[plot]'``), through its
object API (Figure + Agg canvas), so no global pyplot state or GUI backend is touched.
Colours: the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies);
markers and line styles differ too, so the plots read in greyscale.
"""
from __future__ import annotations

import numpy as np

from gradfit.noise_scale.critical import b_crit as _b_crit
from gradfit.plotting import OKABE_ITO, figure
from gradfit.noise_scale.critical import fit_steps_examples, frontier

def _figure():
    return figure((6.4, 4.8), dpi=100, layout=None)


def plot_frontier(S, E, path, S_min=None, E_min=None, b_simple=None, title=None):
    """Measured runs (S[k] steps, E[k] examples), the fitted curve, its asymptotes S_min and
    E_min, the point B = B_crit and, if given, the point B = b_simple on the curve.

    Fits S_min, E_min with ``fit_steps_examples`` unless both are given.  Writes a PNG at
    ``path`` and returns ``(S_min, E_min)``.
    """
    S = np.asarray(S, dtype=np.float64)
    E = np.asarray(E, dtype=np.float64)
    if S_min is None or E_min is None:
        S_min, E_min = fit_steps_examples(S, E)
    bc = _b_crit(S_min, E_min)
    b = E / S
    lo, hi = min(b.min(), bc) / 4.0, max(b.max(), bc) * 4.0
    fs, fe = frontier(S_min, E_min, batch_sizes=np.geomspace(lo, hi, 300))

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fs, fe, "-", color=OKABE_ITO["blue"], label=f"fit: S_min={S_min:.4g}, E_min={E_min:.4g}")
    ax.axvline(S_min, color=OKABE_ITO["black"], ls=":", lw=1)
    ax.axhline(E_min, color=OKABE_ITO["black"], ls=":", lw=1)
    ax.plot(S, E, "o", color=OKABE_ITO["orange"], mec="k", label="runs")
    for sk, ek, bk in zip(S, E, b):
        ax.annotate(f"B={bk:.4g}", (sk, ek), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.plot([2 * S_min], [2 * E_min], "s", color=OKABE_ITO["vermillion"], mec="k", ms=8,
            label=f"B_crit = E_min/S_min = {bc:.4g}")
    if b_simple is not None and b_simple > 0:
        ps, pe = frontier(S_min, E_min, batch_sizes=[float(b_simple)])
        ax.plot(ps, pe, "^", color=OKABE_ITO["green"], mec="k", ms=8, label=f"B_simple = {b_simple:.4g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import LogFormatterSciNotation, NullFormatter
    for axis in (ax.xaxis, ax.yaxis):   # minor labels only where few majors; never overlapping
        axis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    if np.ptp(np.log10(fs)) > 1.2:
        ax.xaxis.set_minor_formatter(NullFormatter())
    _finish(fig, ax, "optimisation steps S", "examples processed E",
            title or "Steps vs examples to reach the target loss", path)
    return S_min, E_min


def plot_b_simple(history_steps, values, path, b_crit=None, title=None):
    """B_simple (None where not yet available) against training step, log scale; optional
    horizontal line at a measured B_crit.  Writes a PNG at ``path`` and returns ``path``."""
    steps = np.asarray(history_steps, dtype=np.float64)
    vals = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if steps.shape != vals.shape:
        raise ValueError(f"history_steps and values differ in length: {steps.size} and {vals.size}")
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, vals, "-", color=OKABE_ITO["blue"], label="B_simple = tr(Sigma) / |G|^2")
    if b_crit is not None:
        ax.axhline(b_crit, color=OKABE_ITO["vermillion"], ls="--", label=f"B_crit = {b_crit:.4g}")
    if np.any(vals > 0):
        ax.set_yscale("log")
    _finish(fig, ax, "training step", "batch size (examples)",
            title or "Gradient noise scale over training", path)
    return path


def _finish(fig, ax, xlabel, ylabel, title, path):
    """Labels, a log-friendly grid and the legend of both figures, then write the PNG."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
