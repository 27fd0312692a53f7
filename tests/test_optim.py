"""Optimizers: one registry (CASES) drives every test, here and in test_optim_reference.py.

Here: one step against the formula written out below (with injected random state), the
arguments each optimizer must reject, convergence on a parabola and on Rosenbrock within a
stated budget, save/reload/continue == uninterrupted, the lecture's equivalent forms,
lookup by name and serialization, what the declarations derive (signature, checks on
assignment, config), and what ``update`` hands to the backends.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math

import numpy as np
import pytest

from gradfit import optimizers
from gradfit.optimizers import (SGD, Adadelta, Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay,
                                Lion, Nadam, RMSprop, drivers, forms)

NAN = float("nan")


# ------------------------------------------------------------------ the formulas, written out
def sgd_formula(p, g, s, lr, t, kw):
    mu, wd = kw.get("momentum", 0.0), kw.get("weight_decay") or 0.0
    g = g + wd * p
    if mu == 0:
        return p - lr * g, {}
    v = mu * s["velocity"] - lr * g
    p = p + mu * v - lr * g if kw.get("nesterov") else p + v
    return p, {"velocity": v}


def adagrad_formula(p, g, s, lr, t, kw):
    eps, wd = kw.get("epsilon", 1e-10), kw.get("weight_decay") or 0.0
    g = g + wd * p
    r = s["accumulator"] + g**2
    den = np.sqrt(r + eps) if kw.get("epsilon_inside_sqrt") else np.sqrt(r) + eps
    return p - lr * g / den, {"accumulator": r}


def rmsprop_formula(p, g, s, lr, t, kw):
    rho, eps, mu = kw.get("rho", 0.9), kw.get("epsilon", 1e-7), kw.get("momentum", 0.0)
    g = g + (kw.get("weight_decay") or 0.0) * p
    new = {"rms": rho * s["rms"] + (1 - rho) * g**2}
    var = new["rms"]
    if kw.get("centered"):
        new["mean_grad"] = rho * s["mean_grad"] + (1 - rho) * g
        var = var - new["mean_grad"] ** 2
    den = np.sqrt(var + eps) if kw.get("epsilon_inside_sqrt") else np.sqrt(var) + eps
    if mu == 0:
        return p - lr * g / den, new
    new["momentum"] = mu * s["momentum"] - lr * g / den
    return p + new["momentum"], new


def adadelta_formula(p, g, s, lr, t, kw):
    rho, eps = kw.get("rho", 0.95), kw.get("epsilon", 1e-6)
    g = g + (kw.get("weight_decay") or 0.0) * p
    eg2 = rho * s["accum_grad"] + (1 - rho) * g**2
    dx = np.sqrt(s["accum_update"] + eps) / np.sqrt(eg2 + eps) * g
    edx2 = rho * s["accum_update"] + (1 - rho) * dx**2
    return p - lr * dx, {"accum_grad": eg2, "accum_update": edx2}


def adam_formula(p, g, s, lr, t, kw, decoupled=False):
    b1, b2, eps = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999), kw.get("epsilon", 1e-8)
    wd = kw.get("weight_decay", 0.01 if decoupled else None) or 0.0
    if decoupled:
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    new = {"m": b1 * s["m"] + (1 - b1) * g, "v": b2 * s["v"] + (1 - b2) * g**2}
    second = new["v"]
    if kw.get("amsgrad"):
        new["vmax"] = second = np.maximum(s["vmax"], new["v"])
    if kw.get("epsilon_hat"):        # Keras: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        return p - lr_t * new["m"] / (np.sqrt(second) + eps), new
    m_hat, v_hat = new["m"] / (1 - b1**t), second / (1 - b2**t)
    den = np.sqrt(v_hat + eps) if kw.get("epsilon_inside_sqrt") else np.sqrt(v_hat) + eps
    return p - lr * m_hat / den, new


def adamw_formula(p, g, s, lr, t, kw):
    return adam_formula(p, g, s, lr, t, kw, decoupled=True)


def nadam_formula(p, g, s, lr, t, kw):
    """torch.optim.NAdam's documented algorithm (Dozat 2016), coupled weight decay."""
    b1, b2, eps = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999), kw.get("epsilon", 1e-8)
    psi = kw.get("momentum_decay", 0.004)
    g = g + (kw.get("weight_decay") or 0.0) * p

    def mu(i):
        return b1 * (1 - 0.5 * 0.96 ** (i * psi))
    product = math.prod(mu(i) for i in range(1, t + 1))
    new = {"m": b1 * s["m"] + (1 - b1) * g, "v": b2 * s["v"] + (1 - b2) * g**2}
    den = np.sqrt(new["v"] / (1 - b2**t)) + eps
    p = p - lr * (1 - mu(t)) / (1 - product) * g / den \
        - lr * mu(t + 1) / (1 - product * mu(t + 1)) * new["m"] / den
    return p, new


def lion_formula(p, g, s, lr, t, kw):
    """Chen et al. 2023, Algorithm 2, line for line."""
    b1, b2, wd = kw.get("beta_1", 0.9), kw.get("beta_2", 0.99), kw.get("weight_decay") or 0.0
    c = b1 * s["m"] + (1 - b1) * g
    p = p - lr * (np.sign(c) + wd * p)
    return p, {"m": b2 * s["m"] + (1 - b2) * g}


# ------------------------------------------------------------------ the registry
@dataclasses.dataclass
class Case:
    id: str
    cls: type
    kwargs: dict
    formula: object
    torch: tuple | None = None          # (torch.optim class name, kwargs)
    keras: tuple | None = None          # (keras.optimizers class name, kwargs)
    parabola: dict | None = None        # kwargs overriding `kwargs` for the convergence runs
    rosenbrock: dict | None = None
    rejects: tuple = ()                 # constructor kwargs that must raise ValueError

    def make(self, **over):
        return self.cls(**{**self.kwargs, "fused": False, **over})


COMMON_REJECTS = ({"learning_rate": -0.1}, {"learning_rate": NAN}, {"learning_rate": math.inf},
                  {"clipnorm": 0.0}, {"clipvalue": -1.0}, {"global_clipnorm": NAN},
                  {"clipnorm": 1.0, "clipvalue": 1.0}, {"weight_decay": -1e-4})
SGD_REJECTS = ({"momentum": 1.0}, {"momentum": -0.1}, {"momentum": NAN},
               {"nesterov": True, "momentum": 0.0})
RMS_REJECTS = ({"rho": 1.0}, {"rho": -0.5}, {"epsilon": 0.0}, {"epsilon": -1e-8}, {"momentum": 1.5})
ADAM_REJECTS = ({"beta_1": 1.2}, {"beta_1": -0.1}, {"beta_2": 1.0}, {"beta_2": NAN},
                {"epsilon": 0.0}, {"epsilon": -1.0})
BETA_REJECTS = ({"beta_1": 1.0}, {"beta_1": -0.5}, {"beta_2": 1.5}, {"beta_2": NAN})
SLOW = {"learning_rate": ExponentialDecay(1e-2, 1000, 0.1)}  # a decaying lr lets it settle

CASES = [
    Case("sgd", SGD, {"learning_rate": 0.1}, sgd_formula,
         torch=("SGD", {"lr": 0.1}), keras=("SGD", {"learning_rate": 0.1}),
         parabola={"learning_rate": 0.15}, rosenbrock={"learning_rate": 2e-3}, rejects=SGD_REJECTS),
    Case("sgd-momentum", SGD, {"learning_rate": 0.05, "momentum": 0.9}, sgd_formula,
         torch=("SGD", {"lr": 0.05, "momentum": 0.9}),
         keras=("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
         parabola={"learning_rate": 0.05}, rosenbrock={"learning_rate": 1e-3}, rejects=SGD_REJECTS),
    Case("sgd-nesterov", SGD, {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
         sgd_formula, torch=("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
         keras=("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
         parabola={"learning_rate": 0.05}, rosenbrock={"learning_rate": 1e-3}, rejects=SGD_REJECTS),
    Case("sgd-weight-decay", SGD, {"learning_rate": 0.05, "momentum": 0.5, "weight_decay": 0.01},
         sgd_formula, torch=("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}),
         parabola={"weight_decay": 0.0, "learning_rate": 0.1},
         rosenbrock={"weight_decay": 0.0, "learning_rate": 1e-3, "momentum": 0.9}, rejects=SGD_REJECTS),
    Case("adagrad", Adagrad, {"learning_rate": 0.1}, adagrad_formula,
         torch=("Adagrad", {"lr": 0.1}),
         parabola={"learning_rate": 1.0}, rosenbrock={"learning_rate": 1.0},
         rejects=({"epsilon": 0.0}, {"initial_accumulator_value": -1.0})),
    Case("adagrad-init-wd", Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.1,
                                      "weight_decay": 0.01},
         adagrad_formula, torch=("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1,
                                             "weight_decay": 0.01})),
    Case("adagrad-eps-inside", Adagrad, {"learning_rate": 0.1, "epsilon": 1e-3,
                                         "initial_accumulator_value": 0.1,
                                         "epsilon_inside_sqrt": True}, adagrad_formula,
         keras=("Adagrad", {"learning_rate": 0.1, "epsilon": 1e-3, "initial_accumulator_value": 0.1}),
         parabola={"learning_rate": 1.0}, rosenbrock={"learning_rate": 1.0}),
    Case("rmsprop", RMSprop, {"learning_rate": 0.01}, rmsprop_formula,
         torch=("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-7}),
         parabola=SLOW, rosenbrock=SLOW, rejects=RMS_REJECTS),
    Case("rmsprop-momentum", RMSprop, {"learning_rate": 0.01, "momentum": 0.5, "rho": 0.8},
         rmsprop_formula, torch=("RMSprop", {"lr": 0.01, "alpha": 0.8, "eps": 1e-7, "momentum": 0.5}),
         parabola=SLOW, rosenbrock=SLOW, rejects=RMS_REJECTS),
    Case("rmsprop-centered", RMSprop, {"learning_rate": 0.01, "centered": True, "momentum": 0.3,
                                       "weight_decay": 0.01},
         rmsprop_formula, torch=("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-7, "momentum": 0.3,
                                             "centered": True, "weight_decay": 0.01}),
         parabola={**SLOW, "weight_decay": 0.0}, rosenbrock={**SLOW, "weight_decay": 0.0}),
    Case("rmsprop-eps-inside", RMSprop, {"learning_rate": 0.01, "epsilon_inside_sqrt": True,
                                         "epsilon": 1e-3}, rmsprop_formula,
         keras=("RMSprop", {"learning_rate": 0.01, "epsilon": 1e-3})),
    Case("rmsprop-eps-inside-centered-momentum", RMSprop,
         {"learning_rate": 0.01, "epsilon_inside_sqrt": True, "epsilon": 1e-3, "centered": True,
          "momentum": 0.5}, rmsprop_formula,
         keras=("RMSprop", {"learning_rate": 0.01, "epsilon": 1e-3, "centered": True,
                            "momentum": 0.5})),
    Case("adadelta", Adadelta, {}, adadelta_formula,
         torch=("Adadelta", {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
         keras=("Adadelta", {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6}),
         parabola={"learning_rate": ExponentialDecay(1.0, 1000, 0.1), "epsilon": 1e-3},
         rosenbrock={"learning_rate": ExponentialDecay(1.0, 1000, 0.1), "epsilon": 1e-3},
         rejects=({"rho": 1.0}, {"rho": NAN}, {"epsilon": 0.0})),
    Case("adadelta-rho-wd", Adadelta, {"learning_rate": 0.5, "rho": 0.9, "weight_decay": 0.01},
         adadelta_formula, torch=("Adadelta", {"lr": 0.5, "rho": 0.9, "eps": 1e-6,
                                               "weight_decay": 0.01})),
    Case("adam", Adam, {"learning_rate": 0.01}, adam_formula,
         torch=("Adam", {"lr": 0.01}),
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03}, rejects=ADAM_REJECTS),
    Case("adam-weight-decay", Adam, {"learning_rate": 0.01, "weight_decay": 0.01, "beta_1": 0.8,
                                     "beta_2": 0.99, "epsilon": 1e-6}, adam_formula,
         torch=("Adam", {"lr": 0.01, "weight_decay": 0.01, "betas": (0.8, 0.99), "eps": 1e-6})),
    Case("amsgrad", Adam, {"learning_rate": 0.01, "amsgrad": True}, adam_formula,
         torch=("Adam", {"lr": 0.01, "amsgrad": True}),
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03}, rejects=ADAM_REJECTS),
    Case("adam-eps-inside", Adam, {"learning_rate": 0.01, "epsilon_inside_sqrt": True,
                                   "epsilon": 1e-4}, adam_formula,
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03}),
    Case("adamw", AdamW, {"learning_rate": 0.01, "weight_decay": 0.1}, adamw_formula,
         torch=("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03, "weight_decay": 0.0},
         rejects=ADAM_REJECTS + ({"weight_decay": -0.1},)),
    Case("adamw-amsgrad", AdamW, {"learning_rate": 0.01, "amsgrad": True}, adamw_formula,
         torch=("AdamW", {"lr": 0.01, "amsgrad": True})),
    Case("adam-epsilon-hat", Adam, {"learning_rate": 0.01, "epsilon": 1e-3, "epsilon_hat": True},
         adam_formula, keras=("Adam", {"learning_rate": 0.01, "epsilon": 1e-3}),
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03},
         rejects=({"epsilon_hat": True, "epsilon_inside_sqrt": True},)),
    Case("amsgrad-epsilon-hat", Adam, {"learning_rate": 0.01, "epsilon": 1e-3, "epsilon_hat": True,
                                       "amsgrad": True}, adam_formula,
         keras=("Adam", {"learning_rate": 0.01, "epsilon": 1e-3, "amsgrad": True})),
    Case("adamw-epsilon-hat", AdamW, {"learning_rate": 0.01, "weight_decay": 0.1, "epsilon": 1e-4,
                                      "epsilon_hat": True}, adamw_formula,
         keras=("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "epsilon": 1e-4})),
    Case("nadam", Nadam, {"learning_rate": 0.01}, nadam_formula,
         torch=("NAdam", {"lr": 0.01}),
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03},
         rejects=ADAM_REJECTS + ({"momentum_decay": -0.1},)),
    Case("nadam-wd", Nadam, {"learning_rate": 0.01, "weight_decay": 0.01, "beta_1": 0.8,
                             "beta_2": 0.99, "momentum_decay": 0.01}, nadam_formula,
         torch=("NAdam", {"lr": 0.01, "weight_decay": 0.01, "betas": (0.8, 0.99),
                          "momentum_decay": 0.01})),
    Case("nadam-keras", Nadam, {"learning_rate": 0.01, "epsilon": 1e-7, "momentum_decay": 1.0},
         nadam_formula, torch=("NAdam", {"lr": 0.01, "eps": 1e-7, "momentum_decay": 1.0}),
         keras=("Nadam", {"learning_rate": 0.01, "epsilon": 1e-7}),
         parabola={"learning_rate": 0.1}, rosenbrock={"learning_rate": 0.03}),
    Case("lion", Lion, {"learning_rate": 0.003}, lion_formula,
         keras=("Lion", {"learning_rate": 0.003}),
         parabola={"learning_rate": CosineDecay(0.02, 1000)},       # the paper decays lr so
         rosenbrock={"learning_rate": CosineDecay(0.01, 3000)},     # (Lion's step never shrinks)
         rejects=BETA_REJECTS + ({"weight_decay": -0.1},)),
    Case("lion-wd", Lion, {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.9, "weight_decay": 0.5},
         lion_formula, keras=("Lion", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.9,
                                       "weight_decay": 0.5})),
]
IDS = [c.id for c in CASES]


def random_state(case, opt, n, rng):
    """Injected state: arbitrary but valid (second moments >= mean**2, vmax >= 0)."""
    state = opt.init(np.zeros(n))
    for name in state:
        if name != "step":
            state[name] = rng.uniform(-1, 1, n) if name in ("velocity", "momentum", "m", "mean_grad") \
                else rng.uniform(0.1, 2.0, n)
    if "mean_grad" in state:
        state["rms"] = state["mean_grad"] ** 2 + rng.uniform(0.1, 1.0, n)
    state["step"] = 4
    return state


# ------------------------------------------------------------------ one step vs the formula
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_step_matches_formula(case):
    rng = np.random.default_rng(0)
    n = 13
    opt = case.make()
    p, g = rng.normal(size=n), rng.normal(size=n)
    state = random_state(case, opt, n, rng)
    expected_p, expected_s = case.formula(p.copy(), g.copy(), {k: v.copy() for k, v in state.items()
                                                               if k != "step"},
                                          opt.current_learning_rate(4), 5, case.kwargs)
    out_p, out_s = opt.update(p, g, state)
    assert out_p is p and out_s is state          # in place, returned for the functional style
    np.testing.assert_allclose(p, expected_p, rtol=1e-13, atol=1e-15)
    assert state["step"] == 5 and isinstance(state["step"], int)
    for name, value in expected_s.items():
        np.testing.assert_allclose(state[name], value, rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_init_state_names_shape_dtype(case):
    opt = case.make()
    params = np.ones(7, dtype=np.float32)
    state = opt.init(params)
    assert state["step"] == 0
    for name, value in state.items():
        if name != "step":
            assert value.shape == (7,) and value.dtype == np.float32, name
    expected = {"velocity"} if case.cls is SGD and opt.momentum else set()
    expected |= {Adagrad: {"accumulator"}, Adadelta: {"accum_grad", "accum_update"},
                 Adam: {"m", "v"} | ({"vmax"} if case.kwargs.get("amsgrad") else set()),
                 AdamW: {"m", "v"} | ({"vmax"} if case.kwargs.get("amsgrad") else set()),
                 Nadam: {"m", "v"}, Lion: {"m"},
                 RMSprop: {"rms"} | ({"momentum"} if case.kwargs.get("momentum") else set())
                 | ({"mean_grad"} if case.kwargs.get("centered") else set())}.get(case.cls, set())
    assert set(state) - {"step"} == expected


def test_float32_stays_float32():
    p = np.ones(5, dtype=np.float32)
    opt = Adam(fused=False)
    state = opt.init(p)
    opt.update(p, np.full(5, 0.5, dtype=np.float32), state)
    assert p.dtype == np.float32 and state["m"].dtype == np.float32
    np.testing.assert_allclose(p, 1 - 1e-3, rtol=1e-6)   # Adam's first step is lr * sign(g)


# ------------------------------------------------------------------ bad input
REJECTS = list({(c.cls.__name__, repr(kw)): (c.cls, kw) for c in CASES
                 for kw in COMMON_REJECTS + tuple(c.rejects)}.values())


@pytest.mark.parametrize("cls,kwargs", REJECTS, ids=[f"{c.__name__}-{kw}" for c, kw in REJECTS])
def test_rejects_bad_arguments(cls, kwargs):
    with pytest.raises(ValueError) as err:
        cls(**kwargs)
    message = str(err.value)
    assert any(repr(v) in message or str(v) in message for v in kwargs.values()), message


def test_rejection_message_is_torch_style():
    with pytest.raises(ValueError, match=r"beta_1 must be a number in \[0, 1\), got 1\.2"):
        Adam(beta_1=1.2)
    with pytest.raises(TypeError, match="learning_rate must be a finite number >= 0 or a schedule"):
        SGD(learning_rate="fast")


def test_learning_rate_assignment_is_validated():
    opt = SGD(learning_rate=0.1)
    opt.learning_rate = 0.01          # what callbacks do
    assert opt.current_learning_rate(10) == 0.01
    with pytest.raises(ValueError, match="-1.0"):
        opt.learning_rate = -1.0


# ------------------------------------------------------------------ convergence
def parabola_grad(x):
    return np.array([1.0, 10.0]) * x       # f = (x^2 + 10 y^2) / 2, minimum at 0


def rosenbrock_grad(x):
    a, b = x                               # f = (1-a)^2 + 100 (b-a^2)^2, minimum at (1, 1)
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


# budget: (gradient, start, minimum, steps, distance to the minimum at the end)
PROBLEMS = {"parabola": (parabola_grad, [3.0, -2.0], [0.0, 0.0], 1000, 1e-3),
            "rosenbrock": (rosenbrock_grad, [-1.2, 1.0], [1.0, 1.0], 3000, 0.1)}
CONV = [(c, name) for c in CASES for name in PROBLEMS if getattr(c, name) is not None]


@pytest.mark.parametrize("case,problem", CONV, ids=[f"{c.id}-{p}" for c, p in CONV])
def test_converges(case, problem):
    grad, start, minimum, steps, tol = PROBLEMS[problem]
    traj = forms.trajectory(case.make(**getattr(case, problem)), grad, start, steps)
    start_dist = np.linalg.norm(np.array(start) - minimum)
    dist = np.linalg.norm(traj[-1] - minimum)
    assert dist < tol < start_dist, f"{case.id} on {problem}: {dist:.3g} from the minimum after {steps} steps"


# ------------------------------------------------------------------ save, reload, continue
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_save_reload_continue_equals_uninterrupted(case, tmp_path):
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(20, 9))
    opt = case.make(learning_rate=ExponentialDecay(0.05, 5, 0.5))
    p_full = np.linspace(-1, 1, 9)
    p = p_full.copy()
    s_full = opt.init(p_full)
    for g in grads:
        opt.update(p_full, g.copy(), s_full)

    state = opt.init(p)
    for g in grads[:10]:
        opt.update(p, g.copy(), state)
    np.savez(tmp_path / "ckpt.npz", params=p, **state)           # state is arrays + a step
    config = json.dumps(optimizers.serialize(opt))
    loaded = np.load(tmp_path / "ckpt.npz")
    opt2 = optimizers.deserialize(json.loads(config))
    p2 = loaded["params"].copy()
    state2 = opt2.init(p2)
    state2.update({k: loaded[k].copy() for k in state2 if k != "step"}, step=int(loaded["step"]))
    for g in grads[10:]:
        opt2.update(p2, g.copy(), state2)
    assert state2["step"] == s_full["step"] == 20
    np.testing.assert_array_equal(p2, p_full)
    for name in s_full:
        np.testing.assert_array_equal(state2[name], s_full[name])


# ------------------------------------------------------------------ the lecture's forms
def quadratic_grad(x):
    h = np.array([[3.0, 1.0], [1.0, 0.5]])
    return h @ x - np.array([1.0, -2.0])


def test_velocity_form_equals_heavy_ball():
    x0, lr, mu = np.array([2.0, -1.0]), 0.1, 0.8
    hb = forms.heavy_ball(quadratic_grad, x0, lr, mu, 40)
    vel = forms.trajectory(SGD(learning_rate=lr, momentum=mu, fused=False), quadratic_grad, x0, 40)
    np.testing.assert_allclose(vel, hb, rtol=1e-12, atol=1e-12)
    assert np.abs(hb[1:] - hb[:-1]).max() > 1e-2          # it actually moved


def test_heavy_ball_on_rosenbrock_equals_velocity_form():
    x0, lr, mu = np.array([-1.2, 1.0]), 1e-3, 0.9
    hb = forms.heavy_ball(rosenbrock_grad, x0, lr, mu, 200)
    vel = forms.trajectory(SGD(learning_rate=lr, momentum=mu, fused=False), rosenbrock_grad, x0, 200)
    np.testing.assert_allclose(vel, hb, rtol=1e-9, atol=1e-12)


def test_lookahead_nesterov_equals_reformulated_under_change_of_variable():
    x0, lr, mu = np.array([2.0, -1.0]), 0.1, 0.8
    thetas, velocities = forms.nesterov_lookahead(quadratic_grad, x0, lr, mu, 40)
    stored = forms.trajectory(SGD(learning_rate=lr, momentum=mu, nesterov=True, fused=False),
                              quadratic_grad, x0, 40)
    np.testing.assert_allclose(stored, thetas + mu * velocities, rtol=1e-12, atol=1e-12)
    assert np.abs(stored - thetas).max() > 1e-3           # the two variables really differ


# ------------------------------------------------------------------ names and serialization
def test_get_by_name_dict_and_instance():
    assert isinstance(optimizers.get("adam"), Adam) and isinstance(optimizers.get("ADAMW"), AdamW)
    nesterov = optimizers.get("nesterov")
    assert nesterov.nesterov and nesterov.momentum == 0.9
    assert optimizers.get("amsgrad").amsgrad
    opt = RMSprop(learning_rate=0.02, centered=True)
    assert optimizers.get(opt) is opt
    again = optimizers.get(optimizers.serialize(opt))
    assert type(again) is RMSprop and again.get_config() == opt.get_config()
    for name in ("sgd", "momentum", "adagrad", "rmsprop", "adadelta"):
        assert isinstance(optimizers.get(name), optimizers.Optimizer)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="'adamx'.*sgd.*adadelta.*adamw"):
        optimizers.get("adamx")
    with pytest.raises(TypeError):
        optimizers.get(3)
    with pytest.raises(ValueError, match="Adamax"):
        optimizers.deserialize({"class_name": "Adamax", "config": {}})


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip_is_json(case):
    opt = case.make()
    config = json.loads(json.dumps(optimizers.serialize(opt)))
    again = optimizers.deserialize(config)
    assert type(again) is case.cls and again.get_config() == opt.get_config()


def test_defaults_are_the_papers():
    assert (Adam().learning_rate, Adam().beta_1, Adam().beta_2, Adam().epsilon) == (1e-3, 0.9, 0.999, 1e-8)
    d = Adadelta()
    assert (d.learning_rate, d.rho, d.epsilon) == (1.0, 0.95, 1e-6)
    assert RMSprop().rho == 0.9 and SGD().learning_rate == 0.01 and AdamW().weight_decay == 0.01
    n = Nadam()
    assert (n.learning_rate, n.beta_1, n.beta_2, n.epsilon, n.momentum_decay) == (1e-3, 0.9, 0.999, 1e-8, 0.004)
    assert (Lion().learning_rate, Lion().beta_1, Lion().beta_2, Lion().weight_decay) == (1e-3, 0.9, 0.99, None)


# ------------------------------------------------------------------ what update hands the backends
@pytest.mark.parametrize("cls,decoupled", [(SGD, False), (AdamW, True), (Lion, True)])
def test_update_hands_the_rule_its_step_and_decay(monkeypatch, cls, decoupled):
    calls = []
    monkeypatch.setattr(drivers, "apply", lambda *args: calls.append(args))
    opt = cls(learning_rate=0.5, clipvalue=1.0, weight_decay=0.1)
    p, g = np.zeros(3), np.array([3.0, -0.5, 0.2])
    state = opt.init(p)
    opt.update(p, g, state)
    rule, slots, params, grads, arrays, keep, wd, numbers, flags, fused = calls[0]
    assert rule is type(opt).rule and slots == type(opt).slots and params is p and fused
    np.testing.assert_array_equal(grads, [1.0, -0.5, 0.2])                    # clipped first
    assert (keep, wd) == ((1 - 0.5 * 0.1, 0.0) if decoupled else (1.0, 0.1))
    assert numbers == opt.coefficients(0.5, 1) and flags == opt.flags()     # t = step + 1
    assert [a is not None for a in arrays] == [name in state for name in slots]
    assert state["step"] == 1


def test_update_runs_on_every_backend_it_names():
    assert drivers.apply(Adam.rule, Adam.slots, np.ones(4), np.ones(4), [np.zeros(4), np.zeros(4), None],
                         1.0, 0.0, Adam().coefficients(0.1, 1), (False, False)) == "numpy"


# ------------------------------------------------------------------ the declarations
@pytest.mark.parametrize("cls", list(optimizers.OPTIMIZERS.values()), ids=list(optimizers.OPTIMIZERS))
def test_constructor_signature_is_the_declaration(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in params] == [(h.name, h.default) for h in cls.hyperparameters]
    kinds = [p.kind == p.KEYWORD_ONLY for p in params]
    assert kinds == sorted(kinds) and kinds[-1]          # keyword-only ones last, fused among them
    assert getattr(cls, params[0].name).default == params[0].default   # Adam.learning_rate: the Hyper


@pytest.mark.parametrize("cls", list(optimizers.OPTIMIZERS.values()), ids=list(optimizers.OPTIMIZERS))
def test_every_hyperparameter_is_checked_on_assignment(cls):
    opt = cls()
    for h in cls.hyperparameters:
        with pytest.raises((ValueError, TypeError), match=h.name):
            setattr(opt, h.name, "nonsense")
        assert getattr(opt, h.name) == h.default or h.name == "learning_rate" and opt.learning_rate == h.default
    opt.learning_rate = ExponentialDecay(0.1, 10, 0.5)    # a schedule is a learning rate too
    assert optimizers.deserialize(optimizers.serialize(opt)).current_learning_rate(10) == pytest.approx(0.05)


def test_unknown_argument_and_two_epsilon_forms_are_refused():
    with pytest.raises(TypeError, match="beta3"):
        Adam(beta3=0.5)
    with pytest.raises(ValueError, match="epsilon_inside_sqrt"):
        AdamW(epsilon_hat=True, epsilon_inside_sqrt=True)


def test_names_come_from_the_classes():
    assert optimizers.NAMES["amsgrad"] == (Adam, {"amsgrad": True})
    assert {name for name, (cls, _) in optimizers.NAMES.items() if cls is SGD} == {"sgd", "momentum", "nesterov"}
    assert optimizers.create("nesterov", learning_rate=0.2).get_config() == \
        SGD(learning_rate=0.2, momentum=0.9, nesterov=True).get_config()
    declared = {n: cls for cls in optimizers.OPTIMIZERS.values() for n in cls.__dict__.get("names", ())}
    assert declared == {n: cls for n, (cls, _) in optimizers.NAMES.items()}
    assert set(optimizers.OPTIMIZERS) <= set(optimizers.__all__)


def test_nadam_product_is_recomputed_after_a_jump():
    opt, fresh = Nadam(), Nadam()
    for t in range(1, 30):
        opt.coefficients(1e-3, t)                          # kept from step to step
    assert opt.coefficients(1e-3, 7) == fresh.coefficients(1e-3, 7)      # back to 7: recomputed
    assert opt.coefficients(1e-3, 8) == Nadam().coefficients(1e-3, 8)
