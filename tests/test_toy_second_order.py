"""Newton, Levenberg-Marquardt and BFGS on the 2-D toy problems: the residual forms and exact
Hessians (against the analytic gradients), the paths (against SciPy and against the formulas
written here), and their place in `gradfit compare toy`."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.optimize

from gradfit.optimizers.second_order import SecondOrderError
from gradfit.lab.toy import PROBLEMS, compare, get_problem, optimizer_by_name, run, run_toy_comparison
from gradfit.lab.toy.curvature import ToyObjective, hessian, residuals_of


def _points(prob, count=12, seed=0):
    (x0, x1), (y0, y1) = prob.window
    rng = np.random.default_rng(seed)
    return np.vstack([np.column_stack([rng.uniform(x0, x1, count), rng.uniform(y0, y1, count)]),
                      prob.start])


@pytest.mark.parametrize("name", [n for n in PROBLEMS if n != "saddle"])
def test_residual_form_gives_the_value_and_gradient(name):
    prob = get_problem(name)
    res = residuals_of(prob)
    for p in _points(prob):
        r, J = res.r(p), res.jacobian(p)
        assert float(r @ r) == pytest.approx(float(prob.value(p)), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(2.0 * J.T @ r, prob.grad(p), rtol=1e-10, atol=1e-9)
        h = 1e-6   # the Jacobian and the residual Hessians against central differences
        fd_J = np.column_stack([(res.r(p + h * e) - res.r(p - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(J, fd_J, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd_J).max()))
        fd_R = np.stack([(res.jacobian(p + h * e) - res.jacobian(p - h * e)) / (2 * h)
                         for e in np.eye(2)], axis=-1)
        np.testing.assert_allclose(res.hessians(p), fd_R, rtol=1e-6,
                                   atol=1e-6 * (1 + np.abs(fd_R).max()))


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_hessian_matches_differences_of_the_analytic_gradient(name):
    prob = get_problem(name)
    h = 1e-6
    for p in _points(prob):
        H = hessian(prob, p)
        fd = np.column_stack([(prob.grad(p + h * e) - prob.grad(p - h * e)) / (2 * h)
                              for e in np.eye(2)])
        np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-5 * (1 + np.abs(fd).max()))
        np.testing.assert_array_equal(H, H.T)


def test_saddle_has_no_gauss_newton_form_and_lm_is_left_out():
    with pytest.raises(SecondOrderError, match="saddle .* is not one: use 'newton' or 'bfgs'"):
        run("lm", "saddle", 5)
    with pytest.warns(RuntimeWarning, match="lm left out on saddle"):
        runs = compare("saddle", ["newton", "lm"], steps=5)
    assert list(runs) == ["newton"]
    with pytest.raises(ValueError, match="'lm' is a second-order method: it has no learning rate"):
        optimizer_by_name("lm", 0.1)


def test_bfgs_path_is_scipys_on_rosenbrock():
    prob = get_problem("rosenbrock")
    traj = run("bfgs", prob, 200)
    path = [np.array(prob.start)]
    scipy.optimize.minimize(lambda p: (float(prob.value(p)), prob.grad(p)), np.array(prob.start),
                            jac=True, method="BFGS", callback=lambda xk: path.append(xk.copy()))
    assert traj.stop.startswith("gradient converged")
    assert traj.steps == len(path) - 1
    np.testing.assert_allclose(traj.points, np.array(path), rtol=0, atol=1e-8)


def test_lm_steps_are_the_damped_gauss_newton_formula_on_rosenbrock():
    """Each accepted step solves (J^T J + mu I) dx = -J^T r (f = r.r, so G = 2 J^T J and
    g = 2 J^T r), mu starting at trainlm's 1e-3 and multiplied by 0.1 after each accepted
    step; written here from the formula, with trainlm's x10 retry on a rejected trial."""
    prob = get_problem("rosenbrock")
    res = residuals_of(prob)
    traj = run("lm", prob, 8)
    x, mu = np.array(prob.start), 1e-3
    for k in range(8):
        r, J = res.r(x), res.jacobian(x)
        while True:
            dx = np.linalg.solve(J.T @ J + mu * np.eye(2), -J.T @ r)
            if prob.value(x + dx) < prob.value(x):
                x, mu = x + dx, mu * 0.1
                break
            mu *= 10
        np.testing.assert_allclose(traj.points[k + 1], x, rtol=1e-12, atol=1e-13)


def test_newton_lm_and_bfgs_beat_the_first_order_methods_to_rosenbrocks_minimum():
    runs = compare("rosenbrock", ["newton", "lm", "bfgs", "adam"], steps=2000, grid=[0.1])
    for name in ("newton", "lm", "bfgs"):
        t = runs[name]
        assert t.learning_rate is None and t.distance() < 1e-6 and t.steps < 50, name
        assert t.evaluations["gradient"] + t.evaluations["gauss_newton"] > 0
    assert runs["newton"].evaluations["hessian"] == runs["newton"].steps
    first = np.flatnonzero(runs["adam"].losses < 1e-10)
    assert first.size and first[0] > 10 * runs["bfgs"].steps


def test_toy_objective_counts_and_runs_newton_cg():
    obj = ToyObjective("himmelblau")
    f, g, H = obj.hessian(np.array([1.0, 1.0]))
    assert obj.evaluations["hessian"] == 1 and obj.evaluations["gradient"] == 0
    np.testing.assert_allclose(obj.hvp(np.array([1.0, 1.0]), np.array([1.0, -2.0])),
                               H @ [1.0, -2.0])
    traj = run("newton_cg", "himmelblau", 100)
    assert traj.final_loss < 1e-12 and traj.evaluations["hvp"] > 0


def test_run_folder_lists_second_order_rows_with_their_evaluations(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.warns(RuntimeWarning, match="lm left out"):
        summary = run_toy_comparison(tmp_path, "saddle", ["sgd", "newton", "lm"], steps=10,
                                     grid=[1e-2])
    rows = {r["optimizer"]: r for r in csv.DictReader(open(tmp_path / "results.csv"))}
    assert rows["lm"]["stop"] == "not applicable" and rows["lm"]["diverged"] == "False"
    assert rows["newton"]["learning_rate"] == "" and "hessian" in rows["newton"]["evaluations"]
    assert rows["sgd"]["evaluations"] == "gradient 10"
    md = (tmp_path / "summary.md").read_text()
    assert "| lm | - |" in md and "not applicable" in md
    assert summary["results"][-1]["optimizer"] == "lm"
