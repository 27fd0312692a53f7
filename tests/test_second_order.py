"""The second-order methods (gradfit.optimizers.second_order), one iteration at a time:

* BFGS, L-BFGS and Newton-CG follow a continuous ``scipy.optimize.minimize`` run on the same
  function iteration by iteration (BFGS / L-BFGS-B / Newton-CG with the exact hessp);
* Levenberg-Marquardt: linear least squares reaches ``numpy.linalg.lstsq``; on a small network
  it follows a trainlm trace written out in the test with torch's Jacobian, step by step, and
  reaches the minimum that ``scipy.optimize.least_squares(method="lm")`` finds;
* Gauss-Newton and Newton solve a linear least-squares problem in one step; Newton shifts an
  indefinite Hessian;
* a run interrupted and resumed from (weights, state) continues bit for bit;
* bad input is refused with one message, before any weight changes.
"""
from __future__ import annotations

import copy
import tracemalloc

import numpy as np
import pytest
import scipy.optimize

import gradfit
from gradfit import Dense, Input, Sequential
from gradfit.curvature import ENV_VAR, InsufficientMemoryError, jacobian
from gradfit.optimizers.second_order import (BFGS, LBFGS, METHODS, GaussNewton, LevenbergMarquardt,
                                             Newton, NewtonCG, Objective, SecondOrderError,
                                             check_full_batch, get)
from gradfit.optimizers.second_order.bfgs import bfgs_update
from gradfit.optimizers.second_order.lbfgs import two_loop


def _regression(seed=0, n=40, hidden=3, noise=0.05):
    """A 2-hidden-2 tanh network and data from a teacher of the same shape (a well-posed
    least-squares problem), with starting weights near the teacher's."""
    rs = np.random.default_rng(seed)
    gradfit.set_random_seed(seed)
    model = Sequential([Input(shape=(2,)), Dense(hidden, activation="tanh"), Dense(2)],
                       dtype="float64")
    model.build()
    teacher = rs.normal(size=model.count_params())
    x = rs.uniform(-2, 2, size=(n, 2))
    model.params[...] = teacher
    y = model.predict(x) + noise * rs.normal(size=(n, 2))
    w0 = teacher + 0.3 * rs.normal(size=teacher.size)
    model.params[...] = w0
    return model, x, y, w0


def _classification(seed=0):
    rs = np.random.default_rng(seed)
    gradfit.set_random_seed(seed)
    model = Sequential([Input(shape=(3,)), Dense(4, activation="tanh"),
                        Dense(3, activation="softmax")], dtype="float64")
    model.build()
    x = rs.normal(size=(30, 3))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return model, x, y, model.params.copy()


def _run(method, objective, params, iterations):
    """Weights after each iteration (stopping at info["stop"]), the losses and the last info."""
    state = method.init(params)
    trajectory, losses, info = [], [], {}
    for _ in range(iterations):
        loss, info = method.iterate(objective, params, state)
        trajectory.append(params.copy())
        losses.append(loss)
        if info["stop"]:
            break
    return trajectory, losses, info


def _relerr(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


# ----------------------------------------------------------------------------- against SciPy
SCIPY = [(BFGS(), "BFGS", {}), (LBFGS(), "L-BFGS-B", {}), (NewtonCG(), "Newton-CG", {}),
         (LBFGS(history=3), "L-BFGS-B", {"maxcor": 3})]


@pytest.mark.parametrize("problem", [_regression, _classification])
@pytest.mark.parametrize("method,scipy_name,options", SCIPY,
                         ids=["bfgs", "lbfgs", "newton_cg", "lbfgs_m3"])
def test_iterates_equal_scipy_minimize(problem, method, scipy_name, options):
    model, x, y, w0 = problem()
    loss = "mse" if problem is _regression else "sparse_categorical_crossentropy"
    objective = Objective(model, x, y, loss=loss)
    reference = []
    kwargs = {"hessp": objective.hvp} if scipy_name == "Newton-CG" else {}
    scipy.optimize.minimize(objective.loss_and_grad, w0.copy(), jac=True, method=scipy_name,
                            callback=lambda xk: reference.append(np.copy(xk)),
                            options={"maxiter": 12, **options}, **kwargs)
    assert len(reference) >= 8, "test set-up: SciPy stopped early"
    model.params[...] = w0
    trajectory, _, _ = _run(method, objective, model.params, len(reference))
    assert len(trajectory) == len(reference)
    for k, (mine, theirs) in enumerate(zip(trajectory, reference)):
        assert _relerr(mine, theirs) < 1e-9, f"iteration {k + 1}"


def test_bfgs_inverse_hessian_update_is_scipys_formula():
    rs = np.random.default_rng(0)
    n = 6
    A = rs.normal(size=(n, n))
    H = np.asfortranarray(A @ A.T + np.eye(n))
    s, y = rs.normal(size=n), rs.normal(size=n)
    rho = 1.0 / (y @ s)
    I = np.eye(n)
    expected = (I - rho * np.outer(s, y)) @ H @ (I - rho * np.outer(y, s)) + rho * np.outer(s, s)
    before = H
    bfgs_update(H, s, y)
    assert H is before                      # in place
    assert _relerr(H, expected) < 1e-13


def test_lbfgs_two_loop_is_the_bfgs_inverse_of_its_pairs():
    """H g from the two-loop recursion = BFGS updates of gamma I by the same pairs, oldest
    first (Nocedal & Wright, Sec. 7.2), over a ring that has wrapped around."""
    rs = np.random.default_rng(1)
    n, m = 5, 3
    Q = rs.normal(size=(n, n))
    B = Q @ Q.T + n * np.eye(n)          # pairs y = B s of a convex quadratic: s.y > 0
    method = LBFGS(history=m)
    state = method.init(np.zeros(n))
    pairs = []
    for _ in range(5):
        s = rs.normal(size=n)
        pairs.append((s, B @ s))
        method._remember(state, s, B @ s, descent=1.0)
    kept = pairs[-m:]
    s_new, y_new = kept[-1]
    H = np.asfortranarray(np.eye(n) * (s_new @ y_new) / (y_new @ y_new))
    for s, y in kept:
        bfgs_update(H, s, y)
    g = rs.normal(size=n)
    assert state["count"] == m
    assert _relerr(two_loop(g, state), H @ g) < 1e-12


# ----------------------------------------------------------------------------- Levenberg-Marquardt
def test_lm_on_linear_least_squares_reaches_lstsq():
    rs = np.random.default_rng(2)
    gradfit.set_random_seed(2)
    model = Sequential([Input(shape=(4,)), Dense(3)], dtype="float64")
    model.build()
    x, y = rs.normal(size=(50, 4)), rs.normal(size=(50, 3))
    objective = Objective(model, x, y, loss="mse")
    _, losses, info = _run(LevenbergMarquardt(min_grad=1e-12), objective, model.params, 60)
    X = np.hstack([x, np.ones((50, 1))])
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    kernel, bias = model.get_weights()
    assert _relerr(kernel, coef[:4]) < 1e-8 and _relerr(bias, coef[4]) < 1e-8
    assert info["stop"] and losses[-1] == pytest.approx(np.mean((X @ coef - y) ** 2), rel=1e-12)


def _trainlm_reference(model, x, y, w0, iterations):
    """MATLAB trainlm's loop written out: J = d(errors)/dw from torch.autograd, errors
    e = t - y, jj = J'J / Ne, je = J'e / Ne, dx = -(jj + mu I) \\ je, accept if perf falls."""
    torch = pytest.importorskip("torch")
    kernel1, _, kernel2, _ = (e.shape for e in model.flat.entries)
    sizes = [e.stop - e.start for e in model.flat.entries]
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)

    def errors(w):
        W1, b1, W2, b2 = torch.split(w, sizes)
        h = torch.tanh(xt @ W1.reshape(kernel1) + b1)
        return (yt - (h @ W2.reshape(kernel2) + b2)).reshape(-1)

    ne = y.size
    w, mu = w0.copy(), 1e-3
    trace = []
    for _ in range(iterations):
        wt = torch.as_tensor(w)
        e = errors(wt).numpy()
        J = torch.autograd.functional.jacobian(errors, wt).numpy()
        perf, jj, je = e @ e / ne, J.T @ J / ne, J.T @ e / ne
        while mu <= 1e10:
            w2 = w - np.linalg.solve(jj + mu * np.eye(w.size), je)
            e2 = errors(torch.as_tensor(w2)).numpy()
            if e2 @ e2 / ne < perf:
                w, mu = w2, max(mu * 0.1, 1e-20)
                break
            mu *= 10
        trace.append((w.copy(), mu))
    return trace


def test_lm_follows_a_trainlm_trace_step_by_step():
    model, x, y, w0 = _regression(seed=3)
    reference = _trainlm_reference(model, x, y, w0, 12)
    model.params[...] = w0
    method = LevenbergMarquardt()
    objective = Objective(model, x, y, loss="mse")
    state = method.init(model.params)
    mus = set()
    for k, (w_ref, mu_ref) in enumerate(reference):
        _, info = method.iterate(objective, model.params, state)
        assert state["mu"] == pytest.approx(mu_ref, rel=1e-12), f"iteration {k + 1}"
        assert _relerr(model.params, w_ref) < 1e-9, f"iteration {k + 1}"
        mus.add(info["trials"])
    assert max(mus) >= 2, "test set-up: some iteration must reject a trial and raise mu"


def test_lm_reaches_the_minimum_of_scipy_least_squares_lm():
    """From a start where both end in the same minimum (a network has many: equivalent ones
    under permuting hidden units, and others; from some starts the two methods, whose damping
    rules differ, end in different ones)."""
    model, x, y, w0 = _regression(seed=4)
    objective = Objective(model, x, y, loss="mse")

    def residuals(w):
        model.params[...] = w
        return (model.predict(x) - y).ravel()

    def jac(w):
        model.params[...] = w
        return jacobian(objective.net, x)
    ref = scipy.optimize.least_squares(residuals, w0.copy(), jac=jac, method="lm", xtol=1e-15,
                                       ftol=1e-15, gtol=1e-15)
    model.params[...] = w0
    _, losses, info = _run(LevenbergMarquardt(min_grad=1e-13), objective, model.params, 200)
    assert "maximum mu" in info["stop"] or "minimum gradient" in info["stop"]
    assert losses[-1] == pytest.approx(2 * ref.cost / y.size, rel=1e-10)
    assert _relerr(model.params, ref.x) < 1e-6


def test_lm_sse_is_mse_with_mu_scaled_by_the_number_of_errors():
    model, x, y, w0 = _regression(seed=2)
    objective = Objective(model, x, y, loss="mse")
    mse_run, _, _ = _run(LevenbergMarquardt(mu=1e-3), objective, model.params, 5)
    model.params[...] = w0
    sse_run, _, _ = _run(LevenbergMarquardt(mu=1e-3 * y.size, performance="sse"), objective,
                         model.params, 5)
    for a, b in zip(mse_run, sse_run):
        assert _relerr(a, b) < 1e-9


def test_lm_generalized_gauss_newton_trains_a_softmax_classifier():
    model, x, y, _ = _classification()
    objective = Objective(model, x, y, loss="sparse_categorical_crossentropy")
    assert objective.net.fused
    _, losses, _ = _run(LevenbergMarquardt(), objective, model.params, 15)
    assert losses[-1] < 0.3 * losses[0] and all(b <= a for a, b in zip(losses, losses[1:]))


def test_lm_stops_at_min_grad_and_at_mu_max_without_a_step():
    model, x, y, w0 = _regression()
    objective = Objective(model, x, y, loss="mse")
    state = {"step": 0, "mu": 1e-3}
    loss, info = LevenbergMarquardt(min_grad=1e6).iterate(objective, model.params, state)
    assert "minimum gradient" in info["stop"] and not info["step"]
    assert np.array_equal(model.params, w0) and loss == objective.loss(w0)
    state = {"mu": 2e10, "iterations": 0}
    _, info = LevenbergMarquardt().iterate(objective, model.params, state)
    assert "maximum mu" in info["stop"] and np.array_equal(model.params, w0)


# ----------------------------------------------------------------------------- Gauss-Newton, Newton
def test_gauss_newton_and_newton_solve_linear_least_squares_in_one_step():
    rs = np.random.default_rng(4)
    gradfit.set_random_seed(4)
    model = Sequential([Input(shape=(3,)), Dense(2)], dtype="float64")
    model.build()
    x, y = rs.normal(size=(20, 3)), rs.normal(size=(20, 2))
    X = np.hstack([x, np.ones((20, 1))])
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    objective = Objective(model, x, y, loss="mse")
    w0 = model.params.copy()
    for method in (GaussNewton(), Newton()):
        model.params[...] = w0
        state = method.init(model.params)
        _, info = method.iterate(objective, model.params, state)
        kernel, bias = model.get_weights()
        assert info["alpha"] == 1.0
        assert _relerr(kernel, coef[:3]) < 1e-10 and _relerr(bias, coef[3]) < 1e-10
        _, info = method.iterate(objective, model.params, state)
        assert "converged" in info["stop"] and not info["step"]


def test_newton_shifts_an_indefinite_hessian_and_still_descends():
    model, x, y, _ = _regression(seed=5)
    objective = Objective(model, x, y, loss="mse")
    rs = np.random.default_rng(5)
    for _ in range(50):   # find weights where the Hessian is indefinite
        w = rs.normal(scale=2.0, size=model.count_params())
        if np.linalg.eigvalsh(objective.hessian(w)[2]).min() < 0:
            break
    else:
        pytest.fail("test set-up: no indefinite Hessian found")
    model.params[...] = w
    f0 = objective.loss(w)
    loss, info = Newton().iterate(objective, model.params, Newton().init(model.params))
    assert info["shift"] > 0 and info["step"] and loss < f0


def test_newton_cg_with_gauss_newton_products_descends():
    model, x, y, _ = _classification(1)
    objective = Objective(model, x, y, loss="sparse_categorical_crossentropy")
    _, losses, _ = _run(NewtonCG(curvature="gauss_newton"), objective, model.params, 8)
    assert objective.evaluations["gnvp"] > 0 and objective.evaluations["hvp"] == 0
    assert losses[-1] < 0.5 * objective.loss(_classification(1)[3])


def test_hvp_operator_shares_one_forward_pass_until_another_evaluation():
    model, x, y, w0 = _regression()
    objective = Objective(model, x, y, loss="mse")
    forward = objective.net.forward
    calls = []
    objective.net.forward = lambda rows: calls.append(len(rows)) or forward(rows)
    rs = np.random.default_rng(0)
    v1, v2 = rs.normal(size=w0.size), rs.normal(size=w0.size)
    product = objective.hvp_operator(w0)
    a, b = product(v1), product(v2)
    assert len(calls) == 1
    objective.loss(w0 + 1.0)            # another pass moves the model: the next product redoes it
    c = product(v1)
    assert len(calls) == 3 and np.array_equal(a, c)
    assert np.array_equal(b, objective.hvp(w0, v2)) and objective.evaluations["hvp"] == 4


def test_newton_cg_stops_without_a_step_when_cg_does_not_converge():
    model, x, y, w0 = _regression()
    objective = Objective(model, x, y, loss="mse")
    method = NewtonCG(cg_maxiter=1)
    loss, info = method.iterate(objective, model.params, method.init(w0))
    assert "did not converge in 1 steps" in info["stop"] and not info["step"]
    assert np.array_equal(model.params, w0) and loss == objective.loss(w0)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_iteration_reports_what_the_loop_needs(name):
    """info has loss_before, step, stop, evaluations on a step and on a converged stop."""
    model, x, y, w0 = _regression(seed=4)
    objective = Objective(model, x, y, loss="mse")
    method = get(name)
    loss, info = method.iterate(objective, model.params, method.init(w0))
    assert {"loss_before", "step", "stop", "evaluations"} <= set(info)
    assert info["step"] and loss < info["loss_before"] and loss == objective.loss(model.params)
    assert sum(info["evaluations"].values()) >= 1
    tolerance = {"lm": "min_grad", "newton_cg": "avextol"}.get(name, "gtol")
    done = get(name, **{tolerance: 1e6})
    loss, info = done.iterate(objective, model.params, done.init(model.params))
    assert {"loss_before", "step", "stop", "evaluations"} <= set(info)
    if name != "newton_cg":   # SciPy's Newton-CG tests its tolerance after the step
        assert info["stop"] and not info["step"]


# ----------------------------------------------------------------------------- resumable state
@pytest.mark.parametrize("name", sorted(METHODS))
def test_resumed_from_weights_and_state_continues_bit_for_bit(name):
    model, x, y, w0 = _regression(seed=4)
    method = get(name)
    objective = Objective(model, x, y, loss="mse")
    state = method.init(model.params)
    saved = None
    straight = []
    for k in range(6):
        if k == 3:
            saved = (model.params.copy(), copy.deepcopy(state))
        method.iterate(objective, model.params, state)
        straight.append(model.params.copy())
    # a fresh process: new model object, new objective (empty caches), the saved state
    model2, _, _, _ = _regression(seed=4)
    model2.params[...] = saved[0]
    objective2 = Objective(model2, x, y, loss="mse")
    state2 = saved[1]
    for k in range(3, 6):
        method.iterate(objective2, model2.params, state2)
        assert np.array_equal(model2.params, straight[k]), f"{name}: iteration {k + 1}"
    for key, value in state.items():
        assert np.array_equal(np.asarray(value), np.asarray(state2[key])), key


# ----------------------------------------------------------------------------- bad input
def test_full_batch_check():
    check_full_batch("lm", None, 100)
    check_full_batch("lm", 100, 100)
    check_full_batch("lm", 64, 100, allow_mini_batch=True)
    with pytest.raises(ValueError, match="batch_size must be the 100 training examples .*'lm', "
                                         "a full-batch method.*got 64; leave batch_size out "
                                         r"\(the whole set\), or set allow_mini_batch"):
        check_full_batch("lm", 64, 100)


def test_unsupported_losses_are_refused_before_any_weight_changes():
    model, x, y, w0 = _regression()
    for method in (LevenbergMarquardt(), GaussNewton()):
        with pytest.raises(SecondOrderError, match="got 'mae'.*loss='mse'"):
            method.iterate(Objective(model, x, y, loss="mae"), model.params, method.init(w0))
        assert np.array_equal(model.params, w0)
    gradfit.set_random_seed(0)
    probs = Sequential([Input(shape=(2,)), Dense(3, activation="sigmoid")], dtype="float64")
    probs.build()
    objective = Objective(probs, x, np.eye(3)[np.arange(len(x)) % 3],
                          loss="categorical_crossentropy")
    with pytest.raises(SecondOrderError, match="no Gauss-Newton form.*from_logits=True"):
        LevenbergMarquardt().iterate(objective, probs.params, {"step": 0, "mu": 1e-3})
    model, x, y, _ = _classification()
    with pytest.raises(SecondOrderError, match="performance='sse'.*needs loss='mse', got "
                                               "'sparse_categorical_crossentropy'"):
        LevenbergMarquardt(performance="sse").check(
            Objective(model, x, y, loss="sparse_categorical_crossentropy"))


def test_float32_models_and_bad_data_are_refused():
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(2,)), Dense(1)])
    model.build()
    with pytest.raises(SecondOrderError, match="float64 weights, the model is float32.*dtype='float64'"):
        Objective(model, np.zeros((3, 2)), np.zeros(3), loss="mse")
    model, x, y, _ = _regression()
    with pytest.raises(ValueError, match="NaN or inf"):
        Objective(model, x, np.where(np.arange(y.size).reshape(y.shape) == 3, np.nan, y), loss="mse")
    with pytest.raises(SecondOrderError, match="different lengths: 40 and 39"):
        Objective(model, x, y[:-1], loss="mse")


def test_non_finite_jacobian_is_refused_before_any_weight_changes():
    model, x, y, w0 = _regression()
    objective = Objective(model, x, y, loss="mse")
    w = w0.copy()
    w[model.flat.entries[2].start] = np.inf     # an output weight: d yhat / d hidden = inf
    model.params[...] = w
    with pytest.raises(SecondOrderError, match="Jacobian has .* non-finite entries.*scale the inputs"):
        LevenbergMarquardt().iterate(objective, model.params, {"step": 0, "mu": 1e-3})
    assert np.array_equal(model.params, w)


def test_singular_gauss_newton_system_is_refused():
    """More weights (2-8-2: 42) than residuals (5 examples x 2 outputs): J^T J is singular."""
    rs = np.random.default_rng(0)
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(2,)), Dense(8, activation="tanh"), Dense(2)], dtype="float64")
    model.build()
    w0 = model.params.copy()
    objective = Objective(model, rs.normal(size=(5, 2)), rs.normal(size=(5, 2)), loss="mse")
    with pytest.raises(SecondOrderError, match="singular.*10 residuals for 42 weights; fewer "
                                               "residuals than weights.*'lm'"):
        GaussNewton().iterate(objective, model.params, GaussNewton().init(w0))
    assert np.array_equal(model.params, w0)
    _, info = LevenbergMarquardt().iterate(objective, model.params, {"step": 0, "mu": 1e-3})
    assert info["step"]                     # LM's damping solves it


@pytest.mark.parametrize("name", ["lm", "gauss_newton", "newton", "bfgs"])
def test_init_refuses_a_network_too_large_for_the_matrix_before_allocating(name, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1e7")
    params = np.zeros(5000)                  # one 5000 x 5000 float64 matrix: 200 MB
    tracemalloc.start()
    try:
        with pytest.raises(InsufficientMemoryError, match=f"{name} on this 10-400-2 network "
                                                          "needs .* of 5,000\u00b2 float64 = 200.0 MB"):
            get(name).init(params, network="10-400-2")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1e6
    assert get("lbfgs").init(params)["s"].shape == (10, 5000)   # 0.8 MB: fits


def test_hyperparameters_are_checked_at_construction():
    """Declared as every optimizer's (gradfit.optimizers.hyper): the constructor, the checks on
    construction and assignment, the config and the registry names come from one list."""
    with pytest.raises(ValueError, match=r"mu_dec must be a number in \(0, 1\), got 2"):
        LevenbergMarquardt(mu_dec=2)
    with pytest.raises(ValueError, match="history must be an integer >= 1, got 0"):
        LBFGS(history=0)
    with pytest.raises(ValueError, match="performance must be one of 'mse', 'sse', got 'mae'"):
        LevenbergMarquardt(performance="mae")
    with pytest.raises(ValueError, match="LevenbergMarquardt: mu must be below mu_max"):
        LevenbergMarquardt(mu=1e11)
    with pytest.raises(ValueError, match="BFGS: c1 must be below c2"):
        get("bfgs", c1=0.95)
    lm = LevenbergMarquardt()
    with pytest.raises(ValueError, match="mu_inc must be a finite number > 1, got 0.5"):
        lm.mu_inc = 0.5
    with pytest.raises(TypeError, match="learning_rate"):
        LevenbergMarquardt(learning_rate=0.1)
    with pytest.raises(SecondOrderError, match="unknown second-order method 'lbfgsb'; valid: bfgs"):
        get("lbfgsb")
    lm = get("lm", mu=0.01)
    config = gradfit.optimizers.serialize(lm)
    assert config == {"class_name": "LevenbergMarquardt", "config": {
        "mu": 0.01, "mu_dec": 0.1, "mu_inc": 10.0, "mu_max": 1e10, "min_grad": 1e-7,
        "performance": "mse", "allow_mini_batch": False}}
    assert gradfit.optimizers.deserialize(config).get_config() == get(config).get_config() \
        == lm.get_config()
    for name, cls in METHODS.items():       # the optimizers' registry knows every method
        assert type(gradfit.optimizers.get(name)) is cls
        assert gradfit.optimizers.lookup(cls.__name__) == (cls, {})
        assert all(h.keras is None for h in cls.hyperparameters)
