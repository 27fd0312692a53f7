"""gradfit.lab.second_order: Newton, Gauss-Newton, LM, BFGS, L-BFGS and Newton-CG against SGD,
momentum and Adam on MATLAB's benchmarks and a width sweep (issue 17; ``gradfit compare
second-order``).

    from gradfit.lab import second_order as lab
    p = lab.sin_problem()                               # SIN 1-5-1 to mse 0.002
    r = lab.run_method(p, "lm")                         # to the goal, the wall or the budget
    lab.run_second_order_comparison("runs/so")          # figures, CSVs, summary.md

problems.py (the problems), runs.py (one run, the learning-rate choice, the comparison),
plots.py (figures), report.py (the run folder, the BLAS threads).  Plotting needs matplotlib.
"""
from __future__ import annotations

from .problems import (PROBLEMS, Problem, build_model, cancer_problem, parity_problem,
                       sin_problem, width_sweep)
from .report import SWEEP_WEIGHTS, blas_pools, run_second_order_comparison, set_blas_threads
from .runs import (DEFAULT_METHODS, FIRST_ORDER, SECOND_ORDER, Budget, MethodRun,
                   compare_methods, run_method, tune_learning_rate)

__all__ = [
    "DEFAULT_METHODS", "FIRST_ORDER", "PROBLEMS", "SECOND_ORDER", "SWEEP_WEIGHTS", "Budget",
    "MethodRun", "Problem", "blas_pools", "build_model", "cancer_problem", "compare_methods",
    "parity_problem", "run_method", "run_second_order_comparison", "set_blas_threads",
    "sin_problem", "tune_learning_rate", "width_sweep",
]
