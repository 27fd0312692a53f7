"""Figures of the second-order lab (matplotlib's object API through `gradfit.plotting`).

* `plot_problem`: one problem, three panels: the full-batch mse against iterations, against
  seconds, and the loss each method ended at against its memory; the goal as a horizontal
  line, the memory available as a vertical one.  A method refused by the memory guard has no
  curve: the legend says "memory wall" and the third panel puts a cross at its bytes, beyond
  the wall, at the starting loss (it never took a step).
* `plot_sweep`: the width sweep, three panels against the number of weights: seconds to the
  goal, iterations to the goal, and memory, with the wall; a method's memory line turns
  dotted where the guard refuses it.

Seed 0's runs are drawn; the tables (report.py) give medians over seeds.
Second-order methods are dashed (`gradfit.plotting.method_style`).
"""
from __future__ import annotations

import numpy as np

from ...memory import human_bytes
from ...plotting import figure, method_style

_WALL = {"color": "0.3", "ls": ":", "lw": 1.2}


def _styles(runs):
    names = list(dict.fromkeys(r.method for r in runs))
    return {name: method_style(name, i) for i, name in enumerate(names)}


def _label(r) -> str:
    lr = f" (lr {r.learning_rate:g})" if r.learning_rate is not None else ""
    if r.ended == "wall":
        return f"{r.method}: memory wall, needs {human_bytes(r.memory_bytes)}"
    if r.ended == "refused":
        return f"{r.method}: refused ({r.detail.split(':')[0][:40]})"
    return f"{r.method}{lr}"


def _loss_panel(ax, runs, styles, x: str):
    for r in runs:
        st = styles[r.method]
        if r.ended in ("wall", "refused") or len(r.losses) < 2:
            ax.plot([], [], color=st["color"], ls=st["ls"], marker=st["marker"], label=_label(r))
            continue
        losses = np.asarray(r.losses)
        xs = np.arange(len(losses)) if x == "iterations" else np.asarray(r.seconds)
        keep = slice(None) if x == "iterations" else slice(1, None)   # 0 s has no log
        ax.plot(xs[keep], losses[keep], color=st["color"], ls=st["ls"], marker=st["marker"],
                markevery=max(1, len(losses) // 10), ms=4, lw=1.4, label=_label(r))
    ax.axhline(runs[0].target, color="0.5", ls="--", lw=1, label=f"goal mse {runs[0].target:g}")
    ax.set_yscale("log")
    if x == "iterations":
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set_xlabel("iteration (full batch)")
    else:
        ax.set_xscale("log")
        ax.set_xlabel("seconds")
    ax.set_ylabel("training mse")
    ax.grid(True, alpha=0.3)


def _memory_panel(ax, runs, styles, wall):
    for r in runs:
        st = styles[r.method]
        if r.ended == "wall":
            ax.plot(r.memory_bytes, r.losses[0] if r.losses else r.target, marker="x", ms=9,
                    color=st["color"], ls="none")
        elif r.ended != "refused" and r.losses:
            ax.plot(r.memory_bytes, min(r.losses), marker=st["marker"], ms=7, color=st["color"],
                    ls="none")
    ax.axhline(runs[0].target, color="0.5", ls="--", lw=1)
    if wall:
        ax.axvline(wall, **_WALL)
        ax.annotate(f"memory available\n{human_bytes(wall)}", (wall, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(-4, -4),
                    textcoords="offset points", ha="right", va="top", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("memory of the method, bytes (float64, peak)")
    ax.set_ylabel("lowest training mse reached")
    ax.grid(True, alpha=0.3)


def plot_problem(runs, path, wall=None, title: str = ""):
    """The three panels of one problem (module docstring) from its seed-0 `MethodRun`s."""
    runs = [r for r in runs if r.seed == 0]
    styles = _styles(runs)
    fig = figure((17, 4.6))
    axes = fig.subplots(1, 3)
    _loss_panel(axes[0], runs, styles, "iterations")
    _loss_panel(axes[1], runs, styles, "seconds")
    _memory_panel(axes[2], runs, styles, wall)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[2].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                   frameon=False)
    r = runs[0]
    fig.suptitle(title or f"{r.problem}: {r.weights:,} weights, goal mse {r.target:g}", fontsize=11)
    fig.savefig(path)
    return fig


def plot_sweep(runs, path, wall=None, title: str = ""):
    """The width sweep's three panels (module docstring) from its seed-0 `MethodRun`s."""
    runs = [r for r in runs if r.seed == 0]
    styles = _styles(runs)
    fig = figure((15.5, 4.6))
    axes = fig.subplots(1, 3)
    for name, st in styles.items():
        mine = sorted((r for r in runs if r.method == name), key=lambda r: r.weights)
        done = [r for r in mine if r.reached]
        kw = {"color": st["color"], "ls": st["ls"], "marker": st["marker"], "ms": 5, "lw": 1.4}
        axes[0].plot([r.weights for r in done], [r.total_seconds for r in done], label=name, **kw)
        axes[1].plot([r.weights for r in done], [r.iterations for r in done], **kw)
        fits = [r for r in mine if r.ended != "wall"]
        axes[2].plot([r.weights for r in fits], [r.memory_bytes for r in fits], **kw)
        beyond = [r for r in mine if r.ended == "wall"]
        if beyond:
            last = fits[-1:] + beyond
            axes[2].plot([r.weights for r in last], [r.memory_bytes for r in last],
                         color=st["color"], ls=":", lw=1)
            axes[2].plot([r.weights for r in beyond], [r.memory_bytes for r in beyond],
                         color=st["color"], marker="x", ms=8, ls="none")
    if wall:
        axes[2].axhline(wall, **_WALL, label=f"memory available {human_bytes(wall)}")
        axes[2].legend(fontsize=7, loc="upper left", frameon=False)
    for ax, ylabel in zip(axes, ("seconds to the goal", "iterations to the goal",
                                 "memory of the method, bytes (float64, peak)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("weights n")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left", frameon=False)
    base = runs[0].problem.split("-")[0] if runs else ""
    fig.suptitle(title or f"width sweep ({base}): to mse {runs[0].target:g} "
                 "(a method missing at a width did not reach the goal there; x: memory wall)",
                 fontsize=11)
    fig.savefig(path)
    return fig
