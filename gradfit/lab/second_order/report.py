"""The second-order lab written to a run folder: what `gradfit compare second-order` calls.

Files in ``out_dir``::

    <problem>.png     per problem (and per width of the sweep): mse against iterations,
                      against seconds, and the lowest mse against memory (plots)
    sweep.png         seconds and iterations to the goal, and memory, against the weights
    results.csv       problem, weights, method, seed, learning_rate, ended, iterations,
                      seconds, final_loss, target, memory_bytes, measured_bytes,
                      measured_how, evaluations, detail
    curves.csv        problem, method, seed, iteration, seconds, loss
    tuning.csv        problem, method, learning_rate, iterations_to_goal, final_loss
    environment.json  CPU, versions, every BLAS pool with its library, kernel and threads
    summary.md        the setup, the environment, one table per problem, the sweep table

**Threads.**  numpy and SciPy each load their own OpenBLAS (``scipy_openblas`` in both
wheels, two libraries), and a thread limit reaches only the libraries loaded when it is set.
`set_blas_threads` therefore loads both (and the data) first, sets every BLAS pool, and
checks that each reports the count asked for; the summary prints every pool.
"""
from __future__ import annotations

import csv
import json
import platform
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg  # noqa: F401 - loads SciPy's OpenBLAS, so a thread limit reaches it

from ...backend import set_num_threads
from ...bench.env import cpu_model, thread_pools
from ...curvature import available_bytes
from ...memory import human_bytes
from ...plotting import require_matplotlib
from . import plots
from .problems import PROBLEMS, width_sweep
from .runs import DEFAULT_METHODS, Budget, compare_methods, median_to_goal

SWEEP_WEIGHTS = (20, 100, 1_000, 10_000, 100_000)


def blas_pools() -> list[dict]:
    """Every BLAS library loaded in this process: ``{"library", "version", "kernel",
    "threads"}`` (threadpoolctl's view)."""
    return [{"library": Path(p.get("filepath", "?")).name, "version": p.get("version"),
             "kernel": p.get("architecture"), "threads": p.get("num_threads")}
            for p in thread_pools() if p.get("user_api") == "blas"]


def set_blas_threads(threads: int) -> list[dict]:
    """Limit every loaded BLAS pool (numpy's and SciPy's) and numba to `threads`; returns
    `blas_pools`, and raises RuntimeError when a pool did not take the limit (or none is
    visible: threadpoolctl missing)."""
    set_num_threads(threads)
    pools = blas_pools()
    wrong = [p for p in pools if p["threads"] != threads]
    if not pools or wrong:
        raise RuntimeError(f"could not set {threads} BLAS threads: pools {pools or 'not visible'} "
                           "(pip install 'gradfit[fast]' for threadpoolctl)")
    return pools


def environment() -> dict:
    """What the timings ran on (JSON-able)."""
    return {"cpu": cpu_model(), "python": platform.python_version(),
            "versions": {"numpy": np.__version__, "scipy": scipy.__version__},
            "blas": blas_pools()}


def run_second_order_comparison(out_dir, problems=("sin", "parity", "cancer"), sweep="sin",
                                sweep_weights=SWEEP_WEIGHTS, methods=DEFAULT_METHODS,
                                seeds: int = 1, budget: Budget = Budget(), memory_limit=None,
                                measure: bool = True, log=None) -> dict:
    """Run the lab (`runs.compare_methods`) on `problems` and on the `sweep`
    problem at `sweep_weights` (``sweep=None``: no sweep) and write ``out_dir`` (module
    docstring).  Threads are the caller's (`set_blas_threads`).  Returns ``{"runs",
    "tuning", "environment", "files"}``."""
    require_matplotlib()   # fail before the runs if matplotlib is missing
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        raise ValueError(f"unknown problem(s) {unknown}; valid: {', '.join(PROBLEMS)}")
    chosen = [PROBLEMS[p]() for p in problems]
    swept = width_sweep(sweep, sweep_weights) if sweep else []
    env = environment()
    wall = memory_limit if memory_limit is not None else available_bytes()
    result = compare_methods(chosen + swept, methods, seeds, budget, memory_limit, measure,
                             log=log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = result["runs"]
    files = {}
    for problem in chosen + swept:
        mine = [r for r in runs if r.problem == problem.name]
        files[problem.name] = out / f"{problem.name}.png"
        plots.plot_problem(mine, files[problem.name], wall)
    if swept:
        files["sweep"] = out / "sweep.png"
        plots.plot_sweep([r for r in runs if r.problem in {p.name for p in swept}],
                         files["sweep"], wall)
    files.update(_write_tables(out, runs, result["tuning"], env))
    settings = {"seeds": seeds, "budget": budget, "memory_limit": wall, "measure": measure}
    files["summary"] = out / "summary.md"
    files["summary"].write_text(summary_markdown(chosen, swept, runs, env, settings))
    return {**result, "environment": env, "files": {k: str(v) for k, v in files.items()}}


def _write_tables(out, runs, tuning, env) -> dict:
    files = {"results": out / "results.csv", "curves": out / "curves.csv",
             "tuning": out / "tuning.csv", "environment": out / "environment.json"}
    with open(files["results"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["problem", "weights", "method", "seed", "learning_rate", "ended",
                    "iterations", "seconds", "final_loss", "target", "memory_bytes",
                    "measured_bytes", "measured_how", "evaluations", "detail"])
        for r in runs:
            w.writerow([r.problem, r.weights, r.method, r.seed, r.learning_rate, r.ended,
                        r.iterations, repr(r.total_seconds), repr(r.final_loss), r.target,
                        r.memory_bytes, r.measured_bytes, r.measured_how,
                        " ".join(f"{k}={v}" for k, v in r.evaluations.items()), r.detail])
    with open(files["curves"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["problem", "method", "seed", "iteration", "seconds", "loss"])
        for r in runs:
            w.writerows([r.problem, r.method, r.seed, k, repr(s), repr(f)]
                        for k, (s, f) in enumerate(zip(r.seconds, r.losses)))
    with open(files["tuning"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["problem", "method", "learning_rate", "iterations_to_goal", "final_loss"])
        for (problem, method), (_, table) in tuning.items():
            w.writerows([problem, method, lr, its, repr(f)] for lr, its, f in table)
    files["environment"].write_text(json.dumps(env, indent=2) + "\n")
    return files


def _cell(runs) -> str:
    """'12 it, 0.02 s' (medians over the seeds that reached the goal), with k/N when not all
    did; else how seed 0 ended."""
    its, secs = median_to_goal(runs)
    reached = sum(r.reached for r in runs)
    if its is None:
        r = runs[0]
        return r.ended if r.ended in ("wall", "refused") else f"{r.ended} (mse {r.final_loss:.3g})"
    note = "" if reached == len(runs) else f" ({reached}/{len(runs)} seeds)"
    return f"{its:g} it, {secs:.3g} s{note}"


def _measured(r) -> str:
    if r.measured_bytes is None:
        return "-"
    # peak RSS moves in pages and allocator arenas: below ~1 MB it is noise
    if r.measured_how == "peak RSS" and r.measured_bytes < 1e6:
        return "< 1 MB"
    return human_bytes(r.measured_bytes)


def _problem_table(problem, runs) -> list[str]:
    lines = [f"### {problem.name}: {'-'.join(map(str, problem.architecture))}, "
             f"{problem.weights:,} weights, {len(problem.x)} examples, goal mse {problem.target:g}",
             "", "| method | lr | to the goal (median) | ended (seed 0) | memory | measured |",
             "|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r.method for r in runs):
        mine = [r for r in runs if r.method == method]
        r = mine[0]
        detail = r.detail.split(";")[0][:70] if r.ended not in ("goal", "wall") else ""
        lines.append(f"| {method} | {'-' if r.learning_rate is None else f'{r.learning_rate:g}'} | "
                     f"{_cell(mine)} | {r.ended}{': ' + detail if detail else ''} | "
                     f"{human_bytes(r.memory_bytes)} | "
                     f"{_measured(r)} |")
    lines += ["", f"![{problem.name}]({problem.name}.png)", ""]
    return lines


def fastest(runs):
    """``(method with the lowest median seconds to the goal, method with the fewest median
    iterations)``, or (None, None) when none reached it."""
    by_method = {}
    for r in runs:
        by_method.setdefault(r.method, []).append(r)
    timed = {m: median_to_goal(rs) for m, rs in by_method.items()}
    timed = {m: v for m, v in timed.items() if v[0] is not None}
    if not timed:
        return None, None
    return min(timed, key=lambda m: timed[m][1]), min(timed, key=lambda m: timed[m][0])


def _fastest(runs) -> str:
    by_s, by_it = fastest(runs)
    if by_s is None:
        return "no method reached the goal"
    return f"fastest in seconds: {by_s}; in iterations: {by_it}"


def summary_markdown(chosen, swept, runs, env, settings) -> str:
    b = settings["budget"]
    pools = "; ".join(f"{p['library']} {p['version']} (kernel {p['kernel']}, threads: "
                      f"{p['threads']})" for p in env["blas"])
    wall = settings["memory_limit"]
    lines = ["# Second-order methods against SGD, momentum and Adam", "",
             f"CPU: {env['cpu']}. numpy {env['versions']['numpy']}, SciPy "
             f"{env['versions']['scipy']}, Python {env['python']}. BLAS: {pools}.", "",
             f"Full-batch iterations; budgets: second-order {b.second_order}, first-order "
             f"{b.first_order} (learning rate tuned on seed 0 over {b.tune} iterations), "
             f"{'no time limit' if b.seconds is None else f'{b.seconds:g} s per run'}; "
             f"{settings['seeds']} seed(s); memory available to the guard: "
             f"{'unknown' if wall is None else human_bytes(wall)}; memory = the method's peak "
             "by gradfit's arithmetic plus weights and gradient; measured = the rise of the "
             f"peak memory over init and one iteration{'' if settings['measure'] else ' (off)'}.",
             ""]
    for problem in chosen:
        mine = [r for r in runs if r.problem == problem.name]
        lines += _problem_table(problem, mine)
        lines += [f"{problem.name}: {_fastest(mine)}.", ""]
    if swept:
        lines += _sweep_table(swept, runs)
    return "\n".join(lines)


def _sweep_table(swept, runs) -> list[str]:
    names = [p.name for p in swept]
    widths = ", ".join(f"{p.weights:,}" for p in swept)
    head = " | ".join(f"{p.weights:,}" for p in swept)
    lines = [f"## Width sweep: {swept[0].name.split('-')[0]} at {widths} weights", "",
             f"| method | {head} |", "|---|" + "---|" * len(swept)]
    for method in dict.fromkeys(r.method for r in runs if r.problem in names):
        cells = [_cell([r for r in runs if r.problem == n and r.method == method]) for n in names]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "| weights | " + " | ".join(f"{p.weights:,}" for p in swept) + " |",
              "|---|" + "---|" * len(swept),
              "| fastest (seconds / iterations) | "
              + " | ".join(" / ".join(m or "-" for m in fastest([r for r in runs if r.problem == n]))
                           for n in names) + " |",
              "", "![sweep](sweep.png)", ""]
    lines += [f"![{p.name}]({p.name}.png)" for p in swept] + [""]
    return lines
