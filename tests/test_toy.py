"""gradfit.lab.toy: problems (gradients vs finite differences), runner, tuning, figures."""
from __future__ import annotations

import csv
import math
import sys

import numpy as np
import pytest

from gradfit import optimizers
from gradfit.lab.toy import (PROBLEMS, LookaheadNesterov, compare, get_problem, optimizer_by_name,
                         run, run_toy_comparison, tune_learning_rate)
from gradfit.lab.toy.runner import diverged

ALL = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam")


# ------------------------------------------------------------------ problems
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_gradient_matches_central_differences(name):
    prob = get_problem(name)
    (x0, x1), (y0, y1) = prob.window
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(x0, x1, 20), rng.uniform(y0, y1, 20)])
    pts = np.vstack([pts, prob.start])
    h = 1e-6
    for p in pts:
        g = prob.grad(p)
        fd = np.array([(prob.value(p + h * e) - prob.value(p - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd).max()))


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_vectorised_over_a_grid(name):
    prob = get_problem(name)
    grid = np.random.default_rng(1).normal(size=(3, 4, 2))
    v, g = prob.value(grid), prob.grad(grid)
    assert v.shape == (3, 4) and g.shape == (3, 4, 2)
    np.testing.assert_allclose(v[2, 1], prob.value(grid[2, 1]), rtol=1e-14)
    np.testing.assert_allclose(g[0, 3], prob.grad(grid[0, 3]), rtol=1e-14)


@pytest.mark.parametrize("name", [n for n in PROBLEMS if PROBLEMS[n].minima])
def test_minima_are_stationary_and_global(name):
    prob = get_problem(name)
    for m in prob.minima:
        assert np.abs(prob.grad(np.array(m))).max() < 1e-9
        assert prob.value(np.array(m)) == pytest.approx(prob.min_value, abs=1e-20)
    (x0, x1), (y0, y1) = prob.window
    gx, gy = np.meshgrid(np.linspace(x0, x1, 201), np.linspace(y0, y1, 201))
    assert prob.value(np.stack([gx, gy], -1)).min() >= prob.min_value - 1e-12
    assert prob.distance_to_minimum(prob.minima[-1]) == 0.0


def test_saddle_has_no_minimum_and_is_unbounded_below():
    s = get_problem("saddle")
    assert s.minima == () and s.min_value is None and not s.bounded
    assert s.value(np.array([0.0, 1e3])) == -1e6
    assert np.all(s.grad(np.zeros(2)) == 0)  # stationary, yet not a minimum
    assert math.isnan(s.distance_to_minimum([0.0, 0.0]))


def test_rotated_valley_is_the_valley_rotated():
    a, b = get_problem("long_valley"), get_problem("long_valley_rotated")
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rot = np.array([[c, -s], [s, c]])
    p = np.array([0.7, -1.3])
    assert b.value(rot @ p) == pytest.approx(a.value(p), rel=1e-12)
    assert b.value(np.array(b.start)) == pytest.approx(a.value(np.array(a.start)), rel=1e-12)


def test_bad_problem_name_and_point_shape():
    with pytest.raises(ValueError, match="rosenbrock.*saddle"):
        get_problem("rosenbrok")
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        get_problem("beale").value(np.zeros(3))


# ------------------------------------------------------------------ convergence budgets
# (lr, steps): every optimizer reaches, and stays after, distance < 1e-2 from the minimum
# at the final step.  Hand-set lrs (momentum 0.9 for the momentum methods, other
# hyper-parameters at their defaults); RMSprop and Adadelta with a constant lr hover at a
# distance that scales with lr, so their lrs are small.  Measured first passage
# (rosenbrock): sgd 11.3k, momentum 0.6k, nesterov 1.1k, adagrad 6.0k, rmsprop 5.7k,
# adadelta 20.1k, adam 8.2k steps; the budgets leave ~20-50% slack.
BUDGET = {
    "parabola": {"sgd": (0.1, 100), "momentum": (0.1, 300), "nesterov": (0.1, 100),
                 "adagrad": (1.0, 100), "rmsprop": (1e-2, 1000), "adadelta": (1.0, 1000),
                 "adam": (0.1, 300)},
    "rosenbrock": {"sgd": (1e-3, 15000), "momentum": (2e-3, 1000), "nesterov": (1e-3, 1500),
                   "adagrad": (0.5, 8000), "rmsprop": (1e-3, 8000), "adadelta": (1e-2, 25000),
                   "adam": (2e-3, 11000)},
}


@pytest.mark.parametrize("problem", list(BUDGET))
@pytest.mark.parametrize("name", ALL)
def test_every_optimizer_converges_within_budget(problem, name):
    lr, steps = BUDGET[problem][name]
    traj = run(optimizer_by_name(name, lr), problem, steps)
    prob = get_problem(problem)
    assert traj.points.shape == (steps + 1, 2) and traj.losses.shape == (steps + 1,)
    assert traj.distance() < 1e-2, f"{name} ended at {traj.final_point} after {steps} steps"
    assert traj.final_loss < 1e-3 * prob.value(np.array(prob.start))


# ------------------------------------------------------------------ runner
@pytest.mark.parametrize("name", ALL)
def test_runner_trajectory_equals_stepping_by_hand(name):
    prob = get_problem("beale")
    opt = optimizers.get(name)
    opt.learning_rate, opt.fused = 3e-3, False
    traj = run(opt, prob, 50)

    hand = optimizers.get(name)
    hand.learning_rate, hand.fused = 3e-3, False
    p = np.array(prob.start, dtype=np.float64)
    state = hand.init(p)
    expected = [p.copy()]
    for _ in range(50):
        p, state = hand.update(p, prob.grad(p), state)
        expected.append(p.copy())
    np.testing.assert_array_equal(traj.points, np.array(expected))
    np.testing.assert_array_equal(traj.losses, prob.value(np.array(expected)))
    assert traj.points.dtype == np.float64 and state["step"] == 50


@pytest.mark.parametrize("problem", ["rosenbrock", "long_valley_rotated", "himmelblau"])
def test_both_nesterov_forms_coincide(problem):
    lr, mu, n = 1e-3, 0.9, 300
    look = run(LookaheadNesterov(lr, mu), problem, n, name="nesterov_lookahead")
    lib = run(optimizers.SGD(learning_rate=lr, momentum=mu, nesterov=True, fused=False), problem, n)
    # the library stores theta~ = theta + mu v, the lecture's form stores theta
    np.testing.assert_allclose(lib.points, look.points + mu * look.velocities,
                               rtol=1e-10, atol=1e-12)
    assert not np.allclose(lib.points[1:10], look.points[1:10])  # the two points do differ
    # and with a different momentum they would not coincide
    other = run(LookaheadNesterov(lr, 0.5), problem, n)
    assert not np.allclose(lib.points, other.points + 0.5 * other.velocities, atol=1e-6)


def test_run_validates_its_inputs():
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        run("adam", "parabola", -1)
    with pytest.raises(ValueError, match="start must be 2 finite"):
        run("adam", "parabola", 3, start=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*nesterov_lookahead"):
        optimizer_by_name("adamm")
    with pytest.raises(TypeError, match="gradfit optimizer"):
        run(object(), "parabola", 3)
    with pytest.raises(ValueError, match="momentum"):
        LookaheadNesterov(0.1, 1.5)


def test_run_accepts_a_start_and_a_name():
    traj = run("sgd", "parabola", 0, start=(1.0, -1.0))
    np.testing.assert_array_equal(traj.points, [[1.0, -1.0]])
    assert traj.name == "sgd" and traj.learning_rate == 0.01  # SGD's default lr


# ------------------------------------------------------------------ tuning
def test_tuning_picks_the_fastest_converged_and_marks_divergence():
    # SGD on x^2 + y^2: lr 0.5 lands on the minimum in one step, 0.25 converges slower,
    # lr 2 multiplies the distance by 3 per step.
    best = tune_learning_rate("sgd", "parabola", 100, grid=[0.25, 0.5, 2.0])
    assert best.learning_rate == 0.5
    scores = dict(best.tuning)
    assert scores[2.0] == math.inf and scores[0.25] < math.inf
    assert diverged(run(optimizer_by_name("sgd", 2.0), "parabola", 100), get_problem("parabola"))


def test_tuning_by_final_loss_prefers_the_lower_loss():
    best = tune_learning_rate(lambda lr: optimizers.SGD(learning_rate=lr, fused=False),
                              "rosenbrock", 300, grid=[1e-4, 1e-3])
    low = run(optimizer_by_name("sgd", 1e-4), "rosenbrock", 300)
    assert best.learning_rate == 1e-3 and best.final_loss < low.final_loss


def test_tuning_errors():
    with pytest.raises(RuntimeError, match="diverged on 'parabola' at every learning rate"):
        tune_learning_rate("sgd", "parabola", 100, grid=[2.0, 5.0])
    with pytest.raises(ValueError, match="criterion 'final_loss' needs a minimum.*mean_loss"):
        tune_learning_rate("sgd", "saddle", 10, criterion="final_loss")
    with pytest.raises(ValueError, match="unknown criterion 'best'"):
        tune_learning_rate("sgd", "parabola", 10, criterion="best")
    with pytest.raises(ValueError, match="grid must hold finite learning rates > 0"):
        tune_learning_rate("sgd", "parabola", 10, grid=[0.1, -1.0])


def test_saddle_tuning_rewards_early_escape():
    best = tune_learning_rate("sgd", "saddle", 50, grid=[1e-3, 1e-1])
    assert best.learning_rate == 0.1 and best.points[-1, 1] > 1.5  # left the window along y


def test_compare_keeps_order_and_default_lrs():
    res = compare("long_valley", ["adam", "sgd"], steps=5, tune=False)
    assert list(res) == ["adam", "sgd"]
    assert res["adam"].learning_rate == 1e-3 and res["sgd"].learning_rate == 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'sdg'"):
        compare("long_valley", ["sgd", "sdg"], steps=5)


# ------------------------------------------------------------------ figures and the run folder
def test_run_toy_comparison_writes_figures_csv_and_summary(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    out = tmp_path / "run"
    summary = run_toy_comparison(out, "rosenbrock", ["sgd", "adam", "nesterov_lookahead"],
                                 steps=30, grid=[1e-3, 1e-2], gif=True, gif_frames=4)
    for key, magic in (("contour", b"\x89PNG"), ("loss", b"\x89PNG"), ("gif", b"GIF8")):
        data = (out / summary["files"][key].rsplit("/", 1)[-1]).read_bytes()
        assert len(data) > 5000 and data.startswith(magic), key
    from PIL import Image

    assert Image.open(out / "trajectories.gif").n_frames == 4
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {r["optimizer"] for r in rows} == {"sgd", "adam", "nesterov_lookahead"}
    assert [float(r["score"]) for r in rows] == sorted(float(r["score"]) for r in rows)
    assert all(r["steps"] == "30" and float(r["learning_rate"]) in (1e-3, 1e-2) for r in rows)
    assert len(list(csv.DictReader(open(out / "tuning.csv")))) == 3 * 2
    md = (out / "summary.md").read_text()
    assert "| 1 | " in md and "![contours](contour.png)" in md and "adam" in md


def test_saddle_figures_clip_the_loss_at_the_window(tmp_path):
    pytest.importorskip("matplotlib")
    from gradfit.lab.toy import plot_contours, plot_losses

    res = compare("saddle", ["sgd", "rmsprop"], steps=15, grid=[1e-2, 1e-1])
    fig = plot_losses("saddle", res, tmp_path / "l.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and (tmp_path / "l.png").stat().st_size > 5000
    lowest = min(np.min(line.get_ydata()) for line in ax.get_lines())
    assert lowest == pytest.approx(-2.25) and res["rmsprop"].final_loss < -2.25  # clipped
    fig = plot_contours("saddle", res, tmp_path / "c.png")
    assert len(fig.axes[0].get_legend().get_texts()) == 3  # start + 2 optimizers


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'gradfit\[plot\]'"):
        run_toy_comparison(tmp_path, "parabola", ["sgd"], steps=2)
    with pytest.raises(ValueError, match="at least one optimizer"):
        run_toy_comparison(tmp_path, "parabola", [], steps=2)


def test_animate_rejects_zero_frames(tmp_path):
    pytest.importorskip("matplotlib")
    from gradfit.lab.toy import animate

    with pytest.raises(ValueError, match="frames must be an integer >= 1, got 0"):
        animate("parabola", compare("parabola", ["sgd"], steps=2, tune=False), tmp_path / "a.gif",
                frames=0)
