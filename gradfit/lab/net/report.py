"""One network comparison written to a run folder: figures, CSVs and a Markdown summary.

``run_net_comparison`` is what ``gradfit compare net`` calls.  Files written in ``out_dir``::

    cost.png      training cost per iteration, one line per optimizer (log y, smoothed)
    tuning.png    short-budget score against learning rate, per optimizer
    results.csv   optimizer, learning_rate, final_cost, train_loss, train_accuracy, test_loss,
                  test_accuracy, iterations, steps_per_epoch, input_dim, seconds,
                  lr_at_grid_edge (rows best final cost first)
    tuning.csv    optimizer, learning_rate, score (every grid point; inf = diverged)
    curves.csv    iteration, then the mini-batch cost of each optimizer
    setup.json    the NetSetup that produced them
    summary.md    the setup, the table and the figures

``load_runs(out_dir)`` reads a folder back, so ``write_reports`` can redraw it without training.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .network import LABELS, NetRun, NetSetup, compare_networks
from ...plotting import MARKERS, PALETTE, figure, require_matplotlib
from ..toy.report import write_rows_csv, write_tuning_csv

# Same colour and marker per optimizer as the toy figures (gradfit.lab.toy.plots).
_ORDER = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam")


def style(name: str, i: int) -> dict:
    j = _ORDER.index(name) if name in _ORDER else len(_ORDER) + i
    return {"color": PALETTE[j % len(PALETTE)], "marker": MARKERS[j % len(MARKERS)]}


def smooth(costs, window: int) -> np.ndarray:
    """Debiased exponential moving average, time constant ``window`` iterations:
    ``s_t = a s_{t-1} + (1 - a) c_t`` with ``a = 1 - 1/window``, divided by ``1 - a^t`` (so the
    first values are not pulled towards 0).  ``window=1`` returns the costs unchanged."""
    c = np.asarray(costs, dtype=np.float64)
    a = 1.0 - 1.0 / max(1, window)
    out, s = np.empty_like(c), 0.0
    for t, v in enumerate(c):
        s = a * s + (1 - a) * v
        out[t] = s / (1 - a ** (t + 1))
    return out


def _figure(figsize):
    return figure(figsize)


def plot_costs(runs: dict, path, title: str = "") -> None:
    """Mini-batch training cost against iterations (log y): smoothed (``smooth`` with a time
    constant of 1/40 of the run) in bold, the raw costs faint for runs up to 1000 iterations;
    epochs on the top axis."""
    fig = _figure((7.5, 4.6))
    ax = fig.add_subplot()
    steps = next(iter(runs.values())).steps_per_epoch
    lo, hi = math.inf, 0.0
    for i, (name, r) in enumerate(runs.items()):
        st, it = style(name, i), np.arange(1, len(r.costs) + 1)
        window = max(1, len(r.costs) // 40)
        ok = np.isfinite(r.costs) & (r.costs > 0)
        if not ok.any():
            continue
        if len(r.costs) <= 1000:  # beyond that the raw costs only blur the picture
            ax.plot(it[ok], r.costs[ok], color=st["color"], alpha=0.15, lw=0.6)
        sm = smooth(r.costs[ok], window)
        lo, hi = min(lo, sm.min()), max(hi, sm.max())
        ax.plot(it[ok], sm, color=st["color"], lw=2,
                marker=st["marker"], markevery=max(1, len(it) // 8), ms=5,
                label=f"{LABELS.get(name, name)} (lr {r.learning_rate:g})")
    ax.set_yscale("log")
    if hi > 0:
        ax.set_ylim(lo / 1.5, hi * 1.5)
    ax.set_xlabel("iterations (mini-batches)")
    ax.set_ylabel("training cost (mini-batch cross-entropy, dropout on)")
    top = ax.secondary_xaxis("top", functions=(lambda x: x / steps, lambda e: e * steps))
    top.set_xlabel("epochs")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.savefig(path)


def plot_tuning(runs: dict, path, title: str = "") -> None:
    """Short-budget score against learning rate (log-log); the chosen rate is circled."""
    fig = _figure((6, 4))
    ax = fig.add_subplot()
    for i, (name, r) in enumerate(runs.items()):
        st = style(name, i)
        lrs = np.array([lr for lr, _ in r.tuning])
        sc = np.array([s for _, s in r.tuning])
        ok = np.isfinite(sc)
        ax.plot(lrs[ok], sc[ok], color=st["color"], marker=st["marker"], label=LABELS.get(name, name))
        ax.plot(lrs[~ok], np.full((~ok).sum(), np.nanmax(np.where(ok, sc, np.nan)) if ok.any() else 1.0),
                ls="none", marker="x", color=st["color"])
        chosen = [s for lr, s in r.tuning if lr == r.learning_rate and math.isfinite(s)]
        if chosen:
            ax.plot([r.learning_rate], chosen, marker="o", ms=12, mfc="none", color=st["color"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("score: mean cost, last quarter of the short run")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "learning-rate search (x: diverged)", fontsize=10)
    fig.savefig(path)


def result_rows(runs: dict, setup: NetSetup) -> list:
    rows = []
    for name, r in runs.items():
        grid = setup.grid(name)
        ev = r.evaluation
        rows.append({
            "optimizer": name, "learning_rate": r.learning_rate,
            "final_cost": r.final_cost(),
            "train_loss": ev.get("train_loss", math.nan),
            "train_accuracy": ev.get("train_accuracy", math.nan),
            "test_loss": ev.get("test_loss", math.nan),
            "test_accuracy": ev.get("test_accuracy", math.nan),
            "iterations": len(r.costs), "steps_per_epoch": r.steps_per_epoch,
            "input_dim": r.input_dim, "seconds": round(r.seconds, 2),
            "lr_at_grid_edge": len(grid) > 1 and r.learning_rate in (min(grid), max(grid)),
        })
    rows.sort(key=lambda row: (math.isnan(row["final_cost"]), row["final_cost"]))
    return rows


def _fmt(v, spec=".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def markdown(rows, setup: NetSetup, files: dict, runs: dict) -> str:
    dims = {r.input_dim for r in runs.values()} if runs else {"in"}
    arch = "-".join(map(str, (*dims, *setup.hidden, 10)))
    sub = f"{setup.train_examples} training examples" if setup.train_examples else "the full training set"
    tune = (f"{setup.tune_epochs:g} epoch" if setup.tune_epochs < 1 else f"{setup.tune_epochs:g} epochs")
    lines = [f"# Network comparison: {setup.data}", "",
             f"{arch} ReLU network, dropout {setup.dropout:g} after each hidden layer, softmax "
             f"cross-entropy, mini-batches of {setup.batch_size}, {sub}, {setup.epochs} epochs per "
             f"optimizer, seed {setup.seed} (same initial weights, batches and dropout masks for all). "
             f"Learning rate per optimizer: the best of its grid by the mean mini-batch cost over the "
             f"last quarter of a {tune} run.", "",
             "| rank | optimizer | lr (grid) | final cost | train loss | test loss | test accuracy | time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        grid = ", ".join(f"{g:g}" for g in setup.grid(r["optimizer"]))
        edge = " (edge)" if r["lr_at_grid_edge"] else ""
        lines.append(f"| {i} | {LABELS.get(r['optimizer'], r['optimizer'])} | {r['learning_rate']:g}{edge} "
                     f"({grid}) | {_fmt(r['final_cost'])} | {_fmt(r['train_loss'])} | "
                     f"{_fmt(r['test_loss'])} | {_fmt(r['test_accuracy'])} | {r['seconds']:.0f} |")
    lines += ["", "final cost: mean mini-batch cost over the last epoch (dropout on), what the figure "
              "plots; train loss: one pass without dropout over "
              f"{setup.eval_train_examples or 'all'} training examples; '-': diverged. "
              "(edge): the chosen rate is at an end of its grid, so a wider grid might do better.", "",
              f"![training cost]({Path(files['cost']).name})", "",
              f"![learning-rate search]({Path(files['tuning']).name})", ""]
    return "\n".join(lines)


def write_reports(runs: dict, setup: NetSetup, out_dir) -> dict:
    """Write every file of the run folder from finished ``runs``; returns ``{kind: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {k: out / f for k, f in (("cost", "cost.png"), ("tuning", "tuning.png"),
                                      ("results", "results.csv"), ("tuning_csv", "tuning.csv"),
                                      ("curves", "curves.csv"), ("setup", "setup.json"),
                                      ("summary", "summary.md"))}
    dim = next(iter(runs.values())).input_dim
    title = f"{setup.data}: {'-'.join(map(str, (dim, *setup.hidden, 10)))} ReLU, dropout {setup.dropout:g}, batch {setup.batch_size}"
    plot_costs(runs, files["cost"], title)
    plot_tuning(runs, files["tuning"])
    rows = result_rows(runs, setup)
    write_rows_csv(files["results"], rows)
    write_tuning_csv(files["tuning_csv"], {name: r.tuning for name, r in runs.items()})
    n = max(len(r.costs) for r in runs.values())
    with open(files["curves"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", *runs])
        for t in range(n):
            w.writerow([t + 1, *(f"{r.costs[t]:.9g}" if t < len(r.costs) else "" for r in runs.values())])
    files["setup"].write_text(json.dumps(setup.to_dict(), indent=2) + "\n")
    files["summary"].write_text(markdown(rows, setup, files, runs))
    return {"out_dir": str(out), "files": {k: str(v) for k, v in files.items()}, "results": rows}


def run_net_comparison(out_dir, setup: NetSetup, data=None, data_dir=None, log=None) -> dict:
    """Tune, train and report (``compare_networks`` then ``write_reports``)."""
    require_matplotlib()  # fail before hours of training if matplotlib is missing
    runs = compare_networks(setup, data=data, data_dir=data_dir, log=log)
    return write_reports(runs, setup, out_dir)


def load_runs(out_dir) -> tuple:
    """``(runs, setup)`` read back from a run folder's CSVs and ``setup.json``, so that its
    figures and summary can be redrawn (``write_reports``) without training again."""
    out = Path(out_dir)
    d = json.loads((out / "setup.json").read_text())
    d["hidden"], d["optimizers"] = tuple(d["hidden"]), tuple(d["optimizers"])
    d["grids"] = {k: tuple(v) for k, v in d["grids"].items()}
    setup = NetSetup(**d)
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    cols = {n: np.array([float(r[j + 1]) for r in rows[1:] if r[j + 1] != ""]) for j, n in enumerate(names)}
    results = {r["optimizer"]: r for r in csv.DictReader(open(out / "results.csv", newline=""))}
    tuning = {}
    for r in csv.DictReader(open(out / "tuning.csv", newline="")):
        tuning.setdefault(r["optimizer"], []).append((float(r["learning_rate"]), float(r["score"])))
    runs = {}
    for n in names:
        r = results[n]
        ev = {k: float(r[k]) for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        run = NetRun(n, float(r["learning_rate"]), cols[n], int(r["steps_per_epoch"]),
                     float(r["seconds"]), math.isnan(float(r["final_cost"])),
                     {k: v for k, v in ev.items() if not math.isnan(v)}, tuning.get(n, []),
                     int(r["input_dim"]))
        runs[n] = run
    return runs, setup
