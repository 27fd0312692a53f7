"""The second-order lab (`gradfit compare second-order`): how each run ends, what it records,
the learning-rate choice of the first-order methods, the run folder, the BLAS threads and the
command line."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from gradfit.backend import set_num_threads
from gradfit.cli import main
from gradfit.lab.second_order.problems import build_model, parity_problem, sin_problem, width_sweep
from gradfit.lab.second_order.report import blas_pools, run_second_order_comparison, set_blas_threads
from gradfit.lab.second_order.runs import (Budget, memory_bytes, run_method, tune_learning_rate)
from gradfit.memory import method_bytes
from gradfit.optimizers.second_order import Objective

SMALL = Budget(second_order=100, first_order=400, tune=200)


@pytest.fixture
def one_thread():
    """BLAS at one thread for the test, and back to what it was after."""
    before = max(p["threads"] for p in blas_pools())
    yield set_blas_threads(1)
    set_num_threads(before)


def test_lm_reaches_the_sin_goal_and_records_every_iteration():
    p = sin_problem()
    r = run_method(p, "lm", budget=SMALL)
    assert r.ended == "goal" and r.reached and r.final_loss <= p.target
    assert all(f > p.target for f in r.losses[:-1])          # it stopped at the first one below
    assert len(r.losses) == len(r.seconds) == r.iterations + 1 and r.seconds[0] == 0.0
    assert np.all(np.diff(r.losses) < 0)                      # LM only accepts descents
    assert np.all(np.diff(r.seconds) >= 0)
    assert r.evaluations["gauss_newton"] == r.iterations
    n = p.weights
    assert r.memory_bytes == method_bytes("lm", n, examples=41, outputs=1)["peak_bytes"] + 16 * n
    assert r.measured_bytes is not None and r.measured_how in ("peak RSS", "tracemalloc")


def test_wall_refusal_and_budget_endings():
    p = parity_problem()
    wall = run_method(p, "bfgs", memory_limit=1000)           # H alone is 161^2 x 8 bytes
    assert wall.ended == "wall" and wall.losses == [] and "161² float64" in wall.detail
    assert "use 'lbfgs'" in wall.detail and wall.measured_bytes is None
    refused = run_method(sin_problem(), "gauss_newton", measure=False)
    assert refused.ended == "refused" and "singular" in refused.detail and refused.iterations == 0
    short = run_method(p, "sgd", budget=Budget(first_order=5), learning_rate=1e-4, measure=False)
    assert short.ended == "budget" and short.iterations == 5
    timed = run_method(p, "sgd", budget=Budget(first_order=10**6, seconds=1e-9),
                       learning_rate=1e-4, measure=False)
    assert timed.ended == "time" and timed.iterations == 1
    with pytest.raises(ValueError, match="sgd needs a learning rate"):
        run_method(p, "sgd")
    with pytest.raises(ValueError, match="unknown method 'lbgfs'"):
        run_method(p, "lbgfs")


def test_first_order_run_is_plain_full_batch_gradient_descent():
    p = sin_problem()
    r = run_method(p, "sgd", budget=Budget(first_order=3), learning_rate=0.05, measure=False)
    model = build_model(p, 0)
    objective = Objective(model, p.x, p.y, loss="mse")
    w = model.params.copy()
    for k in range(4):                      # the loss after k plain steps w <- w - lr g
        f, g = objective.loss_and_grad(w)
        assert r.losses[k] == pytest.approx(f, rel=1e-12)
        w = w - 0.05 * g


def test_learning_rate_is_the_fewest_iterations_to_the_goal():
    p = parity_problem()
    lr, table = tune_learning_rate(p, "adam", SMALL, grid=(1e-3, 1e-2, 1e-1))
    reached = {rate: its for rate, its, _ in table if its is not None}
    assert reached and lr == min(reached, key=reached.get)
    # nothing reaches the goal in 3 iterations: the lowest final loss wins
    lr, table = tune_learning_rate(p, "sgd", Budget(tune=3), grid=(1e-3, 1e-2, 1e-1))
    assert all(its is None for _, its, _ in table)
    assert lr == min(table, key=lambda row: row[2])[0]


def test_memory_of_first_order_methods_counts_their_state_arrays():
    p = parity_problem()
    n = p.weights
    assert [memory_bytes(m, p) for m in ("sgd", "momentum", "adam")] == [16 * n, 24 * n, 32 * n]


def test_run_folder_tables_figures_and_the_wall_in_the_summary(tmp_path, one_thread):
    pytest.importorskip("matplotlib")
    result = run_second_order_comparison(
        tmp_path, problems=("parity",), sweep="sin", sweep_weights=(20, 100),
        methods=("lm", "lbfgs", "adam"), budget=SMALL, memory_limit=200_000, measure=False)
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    ended = {(r["problem"], r["method"]): r["ended"] for r in rows}
    assert ended[("parity", "lm")] == "wall"                  # 2 x 161^2 x 8 > 200 kB
    assert ended[("sin-6", "lm")] == "goal" and ended[("sin-33", "lm")] == "goal"
    assert ended[("parity", "lbfgs")] == "goal"
    curves = list(csv.DictReader(open(tmp_path / "curves.csv")))
    lbfgs = [c for c in curves if c["problem"] == "parity" and c["method"] == "lbfgs"]
    assert len(lbfgs) == int(next(r["iterations"] for r in rows
                                  if (r["problem"], r["method"]) == ("parity", "lbfgs"))) + 1
    assert {r["method"] for r in csv.DictReader(open(tmp_path / "tuning.csv"))} == {"adam"}
    for name in ("parity", "sin-6", "sin-33", "sweep"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    md = (tmp_path / "summary.md").read_text()
    assert "| lm | - | wall |" in md and "threads: 1" in md and "![sweep](sweep.png)" in md
    assert result["environment"]["blas"] == blas_pools()


def test_both_blas_pools_take_the_thread_count(one_thread):
    pools = one_thread
    assert len(pools) >= 2, pools          # numpy's and SciPy's own OpenBLAS
    assert {p["threads"] for p in pools} == {1}


def test_width_sweep_problems_are_what_the_lab_runs():
    assert [p.weights for p in width_sweep("sin", (20, 1000))] == [19, 1000]


def test_command_line(tmp_path, capsys, one_thread):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    status = main(["compare", "second-order", "--problems", "parity", "--sweep", "none",
                   "--methods", "lm", "adam", "--first-order-iterations", "50",
                   "--tune-iterations", "20", "--threads", "1", "--no-measure", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and (out / "summary.md").exists()
    assert "threads: 1" in printed and "kernel" in printed and "parity" in printed
    assert main(["compare", "second-order", "--methods", "lm,sdg", "--out", str(tmp_path / "x")]) == 2
    assert "unknown method 'sdg'" in capsys.readouterr().err
    assert main(["compare", "second-order", "--problems", "none", "--sweep", "none"]) == 2
    assert "nothing to run" in capsys.readouterr().err
