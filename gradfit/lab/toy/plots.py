"""Figures of optimizer runs on a toy problem: contours with paths, loss curves, a GIF.

matplotlib is imported only when a figure is drawn (``pip install 'gradfit[plot]'``), and
only its object API is used (``matplotlib.figure.Figure`` with the Agg canvas), so drawing
never touches pyplot's global state or switches the backend of a notebook.

Colours are the Okabe & Ito (2008) palette, which stays distinguishable under the common
colour-vision deficiencies; each optimizer also gets its own marker, so the figures still
read in greyscale, and the second-order methods (Newton, LM, BFGS, ...) are dashed
(`gradfit.plotting.method_style`).  ``trajectories`` is always ``{name: runner.Trajectory}`` as returned by
``runner.compare``; the order of the dict is the order of the legend.
"""
from __future__ import annotations

import numpy as np

from ...plotting import figure as _figure, method_style
from .problems import get_problem
from .runner import _window_floor

_GRID = 300


def _surface(problem):
    (x0, x1), (y0, y1) = problem.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, _GRID), np.linspace(y0, y1, _GRID))
    return gx, gy, problem.value(np.stack([gx, gy], axis=-1))


def draw_contours(ax, problem, levels: int = 30):
    """Filled contours of ``problem`` on ``ax``: log-spaced levels of ``f - f*`` when
    ``problem.log_levels``, else evenly spaced levels of ``f``; minima as white stars."""
    from matplotlib.colors import LogNorm

    problem = get_problem(problem)
    gx, gy, z = _surface(problem)
    if problem.log_levels:
        gap = np.maximum(z - problem.min_value, 1e-12)
        lo = max(np.percentile(gap, 0.5), gap.max() * 1e-9)
        lv = np.logspace(np.log10(lo), np.log10(gap.max()), levels)
        ax.contourf(gx, gy, gap, levels=lv, norm=LogNorm(lv[0], lv[-1]), cmap="Greys_r",
                    alpha=0.55, extend="min")
        ax.contour(gx, gy, gap, levels=lv[::2], colors="0.45", linewidths=0.5)
    else:
        ax.contourf(gx, gy, z, levels=levels, cmap="Greys_r", alpha=0.55)
        ax.contour(gx, gy, z, levels=levels // 2, colors="0.45", linewidths=0.5)
    for m in problem.minima:
        ax.plot(*m, marker="*", ms=14, color="white", mec="black", mew=1.0, ls="none", zorder=5)
    ax.set_xlim(*problem.window[0])
    ax.set_ylim(*problem.window[1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _label(name, traj):
    lr = traj.learning_rate
    return name if lr is None else f"{name} (lr {lr:.2g})"


def _path(ax, traj, i, upto=None):
    pts = traj.points if upto is None else traj.points[: upto + 1]
    st = method_style(traj.name, i)
    every = max(1, len(traj.points) // 25)
    (line,) = ax.plot(pts[:, 0], pts[:, 1], color=st["color"], marker=st["marker"], ls=st["ls"],
                      markevery=every, ms=4, lw=1.6, label=_label(traj.name, traj), zorder=3)
    return line


def plot_contours(problem, trajectories: dict, path=None, title=None):
    """Contour plot of ``problem`` with every trajectory overlaid; saved to ``path`` (PNG)
    when given.  Returns the matplotlib ``Figure``."""
    problem = get_problem(problem)
    fig = _figure((7.0, 5.6))
    ax = fig.add_subplot()
    draw_contours(ax, problem)
    ax.plot(*problem.start, marker="o", ms=8, color="white", mec="black", ls="none",
            zorder=6, label="start")
    for i, (name, traj) in enumerate(trajectories.items()):
        _path(ax, traj, i)
    ax.set_title(title or f"{problem.name}: {problem.formula}", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if path is not None:
        fig.savefig(path)
    return fig


def plot_losses(problem, trajectories: dict, path=None, title=None):
    """Loss versus step: ``f - f*`` on a log axis (floored at 1e-16) for problems with a
    minimum; for the saddle (no minimum) ``f`` clipped at its lowest value on the plot
    window, on a linear axis, so the step at which each path leaves the window shows (the
    tuning's ``mean_loss`` is the mean of this curve).  When the paths differ in length by
    more than 10x (second-order methods stop after tens of steps, first-order ones run the
    budget) the step axis is symmetric-log, so both show.  Returns the ``Figure``."""

    problem = get_problem(problem)
    fig = _figure((7.0, 4.2))
    ax = fig.add_subplot()
    floor = None if problem.bounded else _window_floor(problem)
    if floor is not None:
        ax.axhline(floor, color="0.5", ls="--", lw=1, label="left the plot window")
    for i, (name, traj) in enumerate(trajectories.items()):
        st = method_style(name, i)
        steps = np.arange(len(traj.losses))
        if problem.bounded:
            y = np.maximum(traj.losses - problem.min_value, 1e-16)
        else:
            y = np.maximum(traj.losses, floor)
        ax.plot(steps, y, color=st["color"], marker=st["marker"], ls=st["ls"],
                markevery=max(1, len(steps) // 12), ms=4, lw=1.4, label=_label(name, traj))
    if problem.bounded:
        ax.set_yscale("log")
        ax.set_ylabel(r"$f(x_t) - f^*$")
    else:
        ax.set_ylabel(r"$f(x_t)$, clipped at the window's lowest value")
    lengths = [t.steps for t in trajectories.values() if t.steps > 0]
    if lengths and max(lengths) > 10 * min(lengths):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(0, max(lengths) * 1.05)
    ax.set_xlabel("step t")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title or f"{problem.name}: loss per step", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if path is not None:
        fig.savefig(path)
    return fig


def animate(problem, trajectories: dict, path, frames: int = 40, fps: int = 8, dpi: int = 64,
            spacing: str = "log"):
    """Animated GIF of the trajectories growing over the contours (matplotlib's
    ``PillowWriter``; needs pillow).

    At most ``frames`` frames, at steps spaced ``"log"`` (default: the early steps, where
    the paths move most, get most frames) or ``"linear"``; the first frame is the start and
    the last the full run.  The layout is computed once, then each frame is one draw
    (~0.1 s).  A 40-frame GIF at the default dpi is about 300 kB.
    """
    from matplotlib.animation import PillowWriter

    try:
        import PIL  # noqa: F401
    except ImportError as exc:
        raise ImportError("GIFs need pillow: pip install 'gradfit[plot]'") from exc
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    problem = get_problem(problem)
    fig = _figure((7.0, 5.6))
    ax = fig.add_subplot()
    draw_contours(ax, problem)
    n = max(t.steps for t in trajectories.values())
    if spacing == "log":
        ticks = np.concatenate([[0], np.geomspace(1, max(n, 1), max(frames - 1, 1))])
    elif spacing == "linear":
        ticks = np.linspace(0, n, frames)
    else:
        raise ValueError(f"spacing must be 'log' or 'linear', got {spacing!r}")
    ticks = np.unique(ticks.round().astype(int))
    lines = [_path(ax, t, i) for i, t in enumerate(trajectories.values())]
    title = ax.set_title(f"{problem.name}: step {n} / {n}", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.canvas.draw()  # lay out once with the full paths, then freeze the layout
    fig.set_layout_engine("none")
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi=dpi):
        for k in ticks:
            for line, traj in zip(lines, trajectories.values()):
                pts = traj.points[: min(k, traj.steps) + 1]
                line.set_data(pts[:, 0], pts[:, 1])
            title.set_text(f"{problem.name}: step {k} / {n}")
            writer.grab_frame()
    return path
