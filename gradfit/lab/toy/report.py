"""One toy comparison written to a run folder: figures, a CSV and a Markdown summary.

``run_toy_comparison`` is what ``gradfit compare toy`` calls; it takes plain values, so the
CLI is a thin argparse layer over it.  Files written in ``out_dir``::

    contour.png      contours with every optimizer's path (plots.plot_contours)
    loss.png         loss per step (plots.plot_losses)
    trajectories.gif only with gif=True (plots.animate)
    results.csv      optimizer, learning_rate, final_loss, distance_to_minimum, steps,
                     diverged, score (the tuning criterion), steps_to_floor (its tie-break:
                     first step at 1e-10, or for the saddle out of the window), evaluations
                     (what the steps cost: ``gradient 2000``, or a second-order method's
                     ``gradient 73, loss 28, hessian 22``), stop (why a second-order method
                     ended before the budget); best first
    tuning.csv       optimizer, learning_rate, score (every grid point; inf = diverged)
    summary.md       the table, the setup and the ranking
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ...plotting import require_matplotlib
from . import plots
from .problems import get_problem
from .runner import DEFAULT_GRID, DEFAULT_OPTIMIZERS, _criterion, compare, is_second_order, score


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}"


def run_toy_comparison(out_dir, problem="rosenbrock", optimizers=None, steps=None, gif=False,
                       tune=True, grid=DEFAULT_GRID, criterion=None, start=None,
                       gif_frames: int = 40) -> dict:
    """Compare ``optimizers`` on ``problem`` and write the run folder ``out_dir``.

    ``optimizers``: names (default: sgd, momentum, nesterov, adagrad, rmsprop, adadelta,
    adam, newton, lm, bfgs; ``"nesterov_lookahead"`` and the other second-order methods also
    accepted; a method that cannot work on the problem, LM on the saddle, is listed as not
    applicable).  ``steps``: default
    ``problem.default_steps``.  ``tune``: pick each lr on ``grid`` by ``criterion`` (see
    ``runner``), else use each optimizer's default lr.  ``gif``: also write an animation
    of ``gif_frames`` frames (about 0.1 s each to draw).  Returns the summary dict
    ``{"problem", "steps", "criterion", "out_dir", "files", "results": [row, ...]}``, rows
    sorted best first.
    """
    prob = get_problem(problem)
    names = list(DEFAULT_OPTIMIZERS if optimizers is None else optimizers)
    if not names:
        raise ValueError("optimizers must name at least one optimizer, got an empty list")
    steps = prob.default_steps if steps is None else steps
    crit = _criterion(prob, criterion)
    require_matplotlib()  # fail before the runs if matplotlib is missing
    trajs = compare(prob, names, steps=steps, tune=tune, grid=grid, criterion=crit, start=start)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"contour": out / "contour.png", "loss": out / "loss.png",
             "results": out / "results.csv", "tuning": out / "tuning.csv",
             "summary": out / "summary.md"}
    plots.plot_contours(prob, trajs, files["contour"])
    plots.plot_losses(prob, trajs, files["loss"])
    if gif:
        files["gif"] = out / "trajectories.gif"
        plots.animate(prob, trajs, files["gif"], frames=gif_frames)

    rows = []
    for n in names:
        t = trajs.get(n)
        if t is None:  # diverged at every lr of the grid, or a method the problem does not fit
            rows.append({"optimizer": n, "learning_rate": None, "final_loss": math.nan,
                         "distance_to_minimum": math.nan, "steps": steps,
                         "diverged": not is_second_order(n), "score": math.inf, "_tie": math.inf,
                         "evaluations": "", "stop": "not applicable" if is_second_order(n) else ""})
            continue
        value, tie = score(t, prob, crit)
        rows.append({"optimizer": n, "learning_rate": t.learning_rate, "final_loss": t.final_loss,
                     "distance_to_minimum": t.distance(), "steps": t.steps,
                     "diverged": bool(value == math.inf), "score": value, "_tie": tie,
                     "evaluations": evaluations_text(t), "stop": t.stop or ""})
    rows.sort(key=lambda r: (r["score"], r["_tie"]))
    for r in rows:  # the tie-break: first step at the floor (see runner.score)
        tie = r.pop("_tie")
        r["steps_to_floor"] = int(tie) if tie < math.inf else None

    write_rows_csv(files["results"], rows)
    write_tuning_csv(files["tuning"], {n: t.tuning for n, t in trajs.items()})

    files["summary"].write_text(_markdown(prob, rows, steps, crit, tune, grid, files))
    return {"problem": prob.name, "steps": steps, "criterion": crit if tune else None,
            "out_dir": str(out), "files": {k: str(v) for k, v in files.items()},
            "results": rows}


def evaluations_text(traj) -> str:
    """What a path's steps cost: ``"gradient 2000"`` for a first-order method (one gradient a
    step), the objective's non-zero counts for a second-order one."""
    if traj.evaluations is None:
        return f"gradient {traj.steps}"
    return ", ".join(f"{k} {v}" for k, v in traj.evaluations.items() if v)


def _criterion_cell(row) -> str:
    if row["stop"] == "not applicable":
        return "not applicable"
    return "diverged" if row["diverged"] else _fmt(row["score"])


def _markdown(prob, rows, steps, crit, tune, grid, files) -> str:
    g = np.asarray(grid, dtype=float)
    how = (f"learning rate tuned per optimizer over {g.size} log-spaced values "
           f"{g.min():.0e}..{g.max():.0e} by `{crit}`" if tune else "default learning rates")
    lines = [f"# Toy comparison: {prob.name}", "",
             f"`f = {prob.formula}`, start ({prob.start[0]:.3g}, {prob.start[1]:.3g}), {steps} "
             f"full-gradient steps, "
             f"{how}. {prob.notes[:1].upper() + prob.notes[1:]}.", ""]
    crit_head = {"final_loss": "f - f* (floored 1e-10)", "distance": "distance (floored 1e-10)",
                 "mean_loss": "mean clipped loss"}[crit]
    head = ["rank", "optimizer", "lr", "final loss", "distance to nearest minimum",
            f"criterion: {crit_head}",
            "first step at the floor" if prob.bounded else "first step out of the window",
            "steps", "evaluations"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        cells = [str(i), r["optimizer"], _fmt(r["learning_rate"]), _fmt(r["final_loss"]),
                 _fmt(r["distance_to_minimum"]),
                 _criterion_cell(r),
                 "-" if r["steps_to_floor"] is None else str(r["steps_to_floor"]),
                 str(r["steps"]), r["evaluations"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    stops = [r for r in rows if r["stop"] and r["stop"] != "not applicable"]
    if stops:
        lines += ["", "Second-order methods end when they stop: "
                  + "; ".join(f"{r['optimizer']} after {r['steps']} steps ({r['stop']})"
                              for r in stops) + "."]
    lines += ["", f"![contours]({files['contour'].name})", "", f"![loss]({files['loss'].name})", ""]
    if "gif" in files:
        lines += [f"![animation]({files['gif'].name})", ""]
    return "\n".join(lines)


def write_rows_csv(path, rows: list[dict]) -> None:
    """One CSV row per dict, the first dict's keys as the header."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_tuning_csv(path, tunings: dict) -> None:
    """Every (learning rate, score) tried per optimizer: ``{name: [(lr, score), ...]}``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["optimizer", "learning_rate", "score"])
        for name, tried in tunings.items():
            w.writerows([name, repr(lr), repr(score)] for lr, score in tried)
