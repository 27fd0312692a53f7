"""gradfit.lab.toy: 2-D test problems, a runner that drives any optimizer over them, figures.

    from gradfit.lab import toy
    runs = toy.compare("rosenbrock", ["sgd", "momentum", "adam"])   # tuned lr each
    toy.plot_contours("rosenbrock", runs, "contour.png")
    toy.run_toy_comparison("runs/toy-rosenbrock")                   # PNGs, CSV, summary.md

Plotting needs matplotlib (``pip install 'gradfit[plot]'``), imported only when drawing.
"""
from __future__ import annotations

from ...plotting import PALETTE
from .plots import animate, plot_contours, plot_losses
from .problems import PROBLEMS, Problem, get_problem, problem_names
from .report import run_toy_comparison
from .runner import (DEFAULT_GRID, DEFAULT_OPTIMIZERS, LookaheadNesterov, Trajectory, compare,
                     optimizer_by_name, run, tune_learning_rate)

__all__ = [
    "Problem", "PROBLEMS", "get_problem", "problem_names",
    "Trajectory", "LookaheadNesterov", "run", "tune_learning_rate", "compare",
    "optimizer_by_name", "DEFAULT_GRID", "DEFAULT_OPTIMIZERS",
    "plot_contours", "plot_losses", "animate", "PALETTE", "run_toy_comparison",
]
