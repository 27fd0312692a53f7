"""Iterations to MATLAB's goals for every method of the second-order lab: the numbers of
docs/second-order.md that do not depend on the machine.

    python benchmarks/second_order_iterations.py --seeds 5 --out docs/results/second-order

Runs `gradfit.lab.compare_methods` (no clock limit, no memory measurement, 1 BLAS thread) on
SIN, PARITY, CANCER and the SIN width sweep at 20, 100 and 1,000 weights (``--sweep-weights``
for more), ``--seeds`` initial weights each, and writes ``iterations.csv`` (one row per run:
iterations, how it ended, the evaluations it took) and ``iterations.md`` (median iterations to
the goal over the seeds that reached it, and how many did).  Resumable: a problem whose rows
are already in ``iterations.csv`` is not run again (delete the file to start over); the file
is rewritten atomically after each problem.  Seconds are NOT recorded here: the timed runs
are `gradfit compare second-order` on a quiet machine (docs/second-order.md).
"""
import argparse
import csv
import os
import statistics
from pathlib import Path

from gradfit.lab.second_order.problems import PROBLEMS, width_sweep
from gradfit.lab.second_order.report import set_blas_threads
from gradfit.lab.second_order.runs import DEFAULT_METHODS, Budget, compare_methods

FIELDS = ["problem", "weights", "method", "seed", "learning_rate", "ended", "iterations",
          "final_loss", "evaluations", "detail"]


def read_rows(path):
    return list(csv.DictReader(open(path))) if path.exists() else []


def write_rows(path, rows):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def markdown(rows, problems, seeds):
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = [f"{p.name} ({p.weights:,} w)" for p in problems]
    lines = [f"Median iterations to the goal over the seeds that reached it ({seeds} seeds; "
             "k/N when not all did; else how seed 0 ended). One iteration = one full-batch "
             "step; the evaluations it takes differ by method (iterations.csv).", "",
             "| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for m in methods:
        cells = []
        for p in problems:
            mine = [r for r in rows if r["problem"] == p.name and r["method"] == m]
            done = [int(r["iterations"]) for r in mine if r["ended"] == "goal"]
            if not mine:
                cells.append("-")
            elif not done:
                cells.append(mine[0]["ended"])
            else:
                note = "" if len(done) == len(mine) else f" ({len(done)}/{len(mine)})"
                cells.append(f"{statistics.median(done):g}{note}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sweep-weights", type=int, nargs="+", default=[20, 100, 1000])
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    ap.add_argument("--out", default="docs/results/second-order")
    args = ap.parse_args(argv)
    set_blas_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "iterations.csv"
    rows = read_rows(path)
    problems = [PROBLEMS[p]() for p in ("sin", "parity", "cancer")]
    problems += width_sweep("sin", args.sweep_weights)
    for problem in problems:
        if any(r["problem"] == problem.name for r in rows):
            print(f"{problem.name}: already in {path}", flush=True)
            continue
        result = compare_methods([problem], args.methods, args.seeds, Budget(), measure=False,
                                 log=lambda m: print(m, flush=True))
        rows += [{"problem": r.problem, "weights": r.weights, "method": r.method, "seed": r.seed,
                  "learning_rate": r.learning_rate, "ended": r.ended, "iterations": r.iterations,
                  "final_loss": repr(r.final_loss),
                  "evaluations": " ".join(f"{k}={v}" for k, v in r.evaluations.items()),
                  "detail": r.detail} for r in result["runs"]]
        write_rows(path, rows)
    (out / "iterations.md").write_text(markdown(rows, problems, args.seeds))
    print((out / "iterations.md").read_text())


if __name__ == "__main__":
    main()
