"""Optimizers against the reference frameworks, run in the test (float64, fused=False).

* 50 steps against ``torch.optim`` for every registry case torch has (SGD plain / momentum /
  nesterov / weight decay, Adagrad, RMSprop plain / momentum / centered, Adadelta, Adam,
  AMSGrad, AdamW, NAdam), on a random quadratic with the same gradient noise fed to both:
  relative error < 1e-10.
* 50 steps against Keras 3 where its form matches when configured equal: SGD (Keras keeps lr
  inside the velocity, as gradfit), Adagrad and RMSprop with ``epsilon_inside_sqrt=True``,
  Adadelta, Adam / AMSGrad / AdamW with ``epsilon_hat=True``, Nadam with
  ``momentum_decay=1``, Lion.  ``test_keras_adam_is_epsilon_hat`` shows that Keras's Adam is
  the paper's rule with ``eps * sqrt(1 - b2**t)`` for ``eps``.
* 50 steps against each case's formula in ``test_optim`` (Lion's is the paper's Algorithm 2).
* The Keras and torch names each optimizer declares are arguments of those classes.
* Clipping (``clipnorm`` per variable, ``global_clipnorm``, ``clipvalue``) against Keras
  (exact) and torch's ``clip_grad_norm_`` / ``clip_grad_value_``.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_optim import CASES  # noqa: E402  (the one registry)

from gradfit.optimizers import OPTIMIZERS, SGD, Adam  # noqa: E402

STEPS, N = 50, 12


def problem(seed):
    """A random SPD quadratic ``f = x'Hx/2 - b'x`` and a fixed gradient-noise sequence."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    h = q @ np.diag(rng.uniform(0.1, 2.0, N)) @ q.T
    b = rng.normal(size=N)
    noise = 0.3 * rng.normal(size=(STEPS, N))
    x0 = rng.normal(size=N)
    return x0, (lambda x, k: h @ x - b + noise[k])


def run_gradfit(case, x0, grad):
    opt = case.make()
    x = x0.copy()
    state = opt.init(x)
    for k in range(STEPS):
        opt.update(x, grad(x, k), state)
    return x


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ------------------------------------------------------------------ torch
TORCH_CASES = [c for c in CASES if c.torch]


@pytest.mark.parametrize("case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_torch_50_steps(case, seed):
    torch = pytest.importorskip("torch")
    x0, grad = problem(seed)
    name, kwargs = case.torch
    p = torch.tensor(x0.copy(), dtype=torch.float64, requires_grad=True)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)   # NAdam keeps mu_product in the default dtype
    try:
        opt = getattr(torch.optim, name)([p], **kwargs)
        for k in range(STEPS):
            p.grad = torch.tensor(grad(p.detach().numpy().copy(), k), dtype=torch.float64)
            opt.step()
    finally:
        torch.set_default_dtype(default)
    expected = p.detach().numpy()
    got = run_gradfit(case, x0, grad)
    assert rel_err(got, expected) < 1e-10
    assert rel_err(expected, x0) > 1e-2                 # the optimizer moved


def test_torch_momentum_form_differs_when_lr_changes():
    """Documented: lr inside (gradfit, Keras) vs outside (torch) the velocity differ once lr moves."""
    torch = pytest.importorskip("torch")
    x0, grad = problem(3)
    p = torch.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    opt = SGD(learning_rate=0.1, momentum=0.9, fused=False)
    x = x0.copy()
    state = opt.init(x)
    for k in range(10):
        lr = 0.1 if k < 5 else 0.01
        topt.param_groups[0]["lr"] = opt.learning_rate = lr
        p.grad = torch.tensor(grad(p.detach().numpy().copy(), k))
        topt.step()
        opt.update(x, grad(x, k), state)
    assert rel_err(x, p.detach().numpy()) > 1e-3


# ------------------------------------------------------------------ keras
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    old = keras.config.floatx()
    keras.config.set_floatx("float64")           # else Keras stores lr as a float32 variable
    yield keras
    keras.config.set_floatx(old)


def run_keras(keras, name, kwargs, x0s, grad_fn, steps):
    """``steps`` Keras updates of the variables ``x0s``; ``grad_fn(list_of_arrays, k)``."""
    variables = [keras.Variable(x.copy(), dtype="float64") for x in x0s]
    opt = getattr(keras.optimizers, name)(**kwargs)
    for k in range(steps):
        grads = grad_fn([keras.ops.convert_to_numpy(v) for v in variables], k)
        opt.apply_gradients([(keras.ops.convert_to_tensor(g, dtype="float64"), v)
                             for g, v in zip(grads, variables)])
    return [keras.ops.convert_to_numpy(v) for v in variables]


KERAS_CASES = [c for c in CASES if c.keras]


@pytest.mark.parametrize("case", KERAS_CASES, ids=[c.id for c in KERAS_CASES])
def test_matches_keras_50_steps(case, keras):
    x0, grad = problem(7)
    name, kwargs = case.keras
    (expected,) = run_keras(keras, name, kwargs, [x0], lambda xs, k: [grad(xs[0], k)], STEPS)
    got = run_gradfit(case, x0, grad)
    assert rel_err(got, expected) < 1e-10
    assert rel_err(expected, x0) > 1e-2


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_its_formula_50_steps(case):
    x0, grad = problem(9)
    x, state = x0.copy(), {k: np.zeros(N) for k in case.make().init(x0) if k != "step"}
    if "accumulator" in state:
        state["accumulator"] += case.kwargs.get("initial_accumulator_value", 0.0)
    lr = case.make().current_learning_rate(0)
    for k in range(STEPS):
        x, new = case.formula(x, grad(x, k), state, lr, k + 1, case.kwargs)
        state.update(new)
    got = run_gradfit(case, x0, grad)
    assert rel_err(got, x) < 1e-10 and rel_err(x, x0) > 1e-2


def declared_names(cls, which):
    return {getattr(h, which) if which == "torch" else h.keras_name for h in cls.hyperparameters} - {None}


@pytest.mark.parametrize("cls", list(OPTIMIZERS.values()), ids=list(OPTIMIZERS))
def test_declared_reference_names_are_real_arguments(cls, keras):
    import inspect
    theirs = set(inspect.signature(getattr(keras.optimizers, cls.__name__).__init__).parameters)
    assert declared_names(cls, "keras") <= theirs, declared_names(cls, "keras") - theirs
    torch = pytest.importorskip("torch")
    if cls.torch_class is None:                       # declared as having no torch class
        assert not hasattr(torch.optim, cls.__name__)
        return
    theirs = set(inspect.signature(getattr(torch.optim, cls.torch_class).__init__).parameters)
    ours = {name.split("[")[0] for name in declared_names(cls, "torch")}
    assert ours <= theirs, ours - theirs


def test_keras_adam_is_epsilon_hat(keras):
    """Keras Adam == gradfit Adam with eps replaced by eps / sqrt(1 - b2**t) at each step."""
    x0, grad = problem(8)
    eps = 1e-3                                   # large, so that the difference shows
    (expected,) = run_keras(keras, "Adam", {"learning_rate": 0.01, "epsilon": eps},
                            [x0], lambda xs, k: [grad(xs[0], k)], STEPS)
    x, plain = x0.copy(), x0.copy()
    opt, ref = Adam(learning_rate=0.01, epsilon=eps, fused=False), Adam(learning_rate=0.01, epsilon=eps, fused=False)
    state, ref_state = opt.init(x), ref.init(plain)
    for k in range(STEPS):
        opt.epsilon = eps / np.sqrt(1 - 0.999 ** (k + 1))
        opt.update(x, grad(x, k), state)
        ref.update(plain, grad(plain, k), ref_state)
    assert rel_err(x, expected) < 1e-10
    assert rel_err(plain, expected) > 1e-6


# ------------------------------------------------------------------ clipping
SEGMENTS = [(0, 5), (5, 12)]


def split(x):
    return [x[a:b] for a, b in SEGMENTS]


@pytest.mark.parametrize("clip", [{"clipnorm": 0.5}, {"global_clipnorm": 0.7}, {"clipvalue": 0.2},
                                  {"clipnorm": 100.0}])
def test_clipping_matches_keras(clip, keras):
    x0, grad = problem(4)
    expected = np.concatenate(run_keras(keras, "SGD", {"learning_rate": 0.1, "momentum": 0.5, **clip},
                                        split(x0), lambda xs, k: split(grad(np.concatenate(xs), k)),
                                        10))
    opt = SGD(learning_rate=0.1, momentum=0.5, fused=False, **clip)
    x = x0.copy()
    state = opt.init(x, segments=SEGMENTS)
    for k in range(10):
        opt.update(x, grad(x, k), state)
    # Keras computes the norm scale in float32 even with floatx float64 (measured: a relative
    # 2.7e-9 on the scale of one step), so the norm clips agree to 1e-7, the others to 1e-12
    tol = 1e-7 if set(clip) & {"clipnorm", "global_clipnorm"} and max(clip.values()) < 10 else 1e-12
    assert rel_err(x, expected) < tol
    assert rel_err(x, x0) > 1e-2


def test_clipnorm_is_per_segment():
    g = np.array([3.0, 4.0, 0.0, 0.3, 0.4])          # norms 5 and 0.5
    opt = SGD(learning_rate=1.0, clipnorm=1.0, fused=False)
    p = np.zeros(5)
    opt.update(p, g.copy(), opt.init(p, segments=[(0, 3), (3, 5)]))
    np.testing.assert_allclose(-p, [0.6, 0.8, 0.0, 0.3, 0.4])
    p = np.zeros(5)
    opt.update(p, g.copy(), opt.init(p))              # no segments: one variable, norm ~5.02
    np.testing.assert_allclose(-p, g / np.linalg.norm(g))


def test_clipping_matches_torch_utils():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    g = rng.normal(size=N)
    for kwargs, clip_fn in (({"global_clipnorm": 0.5}, lambda t: torch.nn.utils.clip_grad_norm_(t, 0.5)),
                            ({"clipvalue": 0.3}, lambda t: torch.nn.utils.clip_grad_value_(t, 0.3))):
        t = torch.zeros(N, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(g.copy())
        clip_fn([t])
        p = np.zeros(N)
        opt = SGD(learning_rate=1.0, fused=False, **kwargs)
        opt.update(p, g.copy(), opt.init(p))
        # torch divides by (norm + 1e-6): relative difference 1e-6 / norm, documented
        np.testing.assert_allclose(-p, t.grad.numpy(), rtol=1e-5)
        assert np.abs(-p - g).max() > 0.1             # clipping was active


def test_segments_outside_buffer_rejected():
    with pytest.raises(ValueError, match=r"\(0, 20\)"):
        SGD(clipnorm=1.0).init(np.zeros(10), segments=[(0, 20)])
