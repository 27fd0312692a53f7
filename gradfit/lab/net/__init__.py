"""gradfit.lab.net: optimizers compared on a network (the setup of the Adam paper's Figure 2).

    from gradfit.lab import net
    setup = net.setup_for("digits", epochs=20)          # or "mnist": 784-1000-1000-10
    runs = net.compare_networks(setup)                  # {name: NetRun}, tuned lr each
    net.run_net_comparison("runs/net-digits", setup)    # PNGs, CSVs, summary.md

Plotting needs matplotlib (``pip install 'gradfit[plot]'``), imported only when drawing.
"""
from __future__ import annotations

from .network import (DEFAULT_OPTIMIZERS, GRIDS, LABELS, PRESETS, IterationCost, NetRun, NetSetup,
                      build_model, check_setup, compare_networks, load_data, make_optimizer,
                      setup_for, train_run, tune)
from .report import load_runs, plot_costs, plot_tuning, run_net_comparison, smooth, write_reports

__all__ = [
    "DEFAULT_OPTIMIZERS", "GRIDS", "LABELS", "PRESETS", "IterationCost", "NetRun", "NetSetup",
    "build_model", "check_setup", "compare_networks", "load_data", "make_optimizer", "setup_for",
    "train_run", "tune", "load_runs", "plot_costs", "plot_tuning", "run_net_comparison", "smooth", "write_reports",
]
