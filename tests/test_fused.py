"""The backends run the SAME rule and agree bit for bit: numba's driver, numpy's traced
program, and the CuPy path (on the strict CPU stand-in, tests/fake_cupy.py, through its
``fuse``).  Every optimizer and option of the registry in test_optim.py, both dtypes, at
sizes that cut numba's and numpy's chunks unevenly and on both sides of ``PARALLEL_MIN``.

Bitwise, not to a tolerance: the backends do the same operations in the same order on the
same dtype, every scalar cast to it first, without fastmath (so LLVM does not reassociate).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import fake_cupy  # noqa: E402
from test_optim import CASES  # noqa: E402  (the one registry)

from gradfit import backend  # noqa: E402
from gradfit.optimizers import Adam, Optimizer, RMSprop, drivers, numba_driver  # noqa: E402
from gradfit.optimizers.base import declare, learning_rate  # noqa: E402
from gradfit.optimizers.elementwise import sign  # noqa: E402
from gradfit.optimizers.hyper import UNIT, Hyper  # noqa: E402
from gradfit.optimizers.program import Program  # noqa: E402

numba = pytest.importorskip("numba")   # CI has numba: this file checks the numba backend

IDS = [c.id for c in CASES]
#: numba's chunks (16384) cut 3 times with a remainder; numpy's, made small here (its value
#: changes no logic), 4 times with another remainder
N = 3 * numba_driver.CHUNK + 5
NUMPY_CHUNK = 12_007


def run(case, backend_name, dtype, n, steps=6, monkeypatch=None):
    """``steps`` updates of ``case`` on one backend; (params, state) as numpy arrays."""
    rng = np.random.default_rng(0)
    opt = case.make(fused=backend_name == "numba")
    params = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * rng.uniform(0.01, 2)).astype(dtype) for _ in range(steps)]
    move = fake_cupy.module.asarray if backend_name == "device" else (lambda a: a)
    params = move(params)
    state = opt.init(params)
    ran = set()
    apply = drivers.apply
    monkeypatch.setattr(drivers, "apply", lambda *a: ran.add(apply(*a)))
    for g in grads:
        opt.update(params, move(g) + params * dtype(0.1), state)  # loss-like dependence on theta
    monkeypatch.setattr(drivers, "apply", apply)
    assert ran == {backend_name}
    back = (lambda a: a.get()) if backend_name == "device" else (lambda a: a)
    return back(params), {k: v if k == "step" else back(v) for k, v in state.items()}


@pytest.fixture
def device(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy.module)
    backend.set_backend("cupy")
    yield
    backend.set_backend("numpy")


def assert_same(a, b):
    p_a, s_a = a
    p_b, s_b = b
    assert set(s_a) == set(s_b) and s_a["step"] == s_b["step"]
    np.testing.assert_array_equal(p_a, p_b)
    for key in s_a:
        np.testing.assert_array_equal(s_a[key], s_b[key], err_msg=key)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_and_numpy_run_the_same_rule_bitwise(case, dtype, monkeypatch):
    monkeypatch.setattr(drivers, "PARALLEL_MIN", 0)      # numba at any size
    monkeypatch.setattr(drivers, "NUMPY_CHUNK", NUMPY_CHUNK)
    n = N
    reference = run(case, "numpy", dtype, n, monkeypatch=monkeypatch)
    assert_same(run(case, "numba", dtype, n, monkeypatch=monkeypatch), reference)
    assert reference[0].dtype == dtype
    assert not np.array_equal(reference[0], run(case, "numpy", dtype, n, steps=1,
                                                monkeypatch=monkeypatch)[0])   # it moved


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_path_runs_the_same_rule_bitwise(case, dtype, monkeypatch, device):
    monkeypatch.setattr(drivers, "NUMPY_CHUNK", NUMPY_CHUNK)
    n = 2 * NUMPY_CHUNK + 3
    device_result = run(case, "device", dtype, n, monkeypatch=monkeypatch)
    backend.set_backend("numpy")
    assert_same(device_result, run(case, "numpy", dtype, n, monkeypatch=monkeypatch))


def test_device_path_without_fuse_evaluates_array_expressions(monkeypatch, device):
    monkeypatch.delattr(fake_cupy.module, "fuse")
    monkeypatch.setattr(drivers, "_device_steps", {})
    case = next(c for c in CASES if c.id == "amsgrad")
    device_result = run(case, "device", np.float64, 1000, monkeypatch=monkeypatch)
    backend.set_backend("numpy")
    assert_same(device_result, run(case, "numpy", np.float64, 1000, monkeypatch=monkeypatch))


def test_the_threshold_picks_the_backend():
    case = next(c for c in CASES if c.id == "adam")
    seen = []
    for n in (drivers.PARALLEL_MIN - 1, drivers.PARALLEL_MIN):
        opt = case.make(fused=True)
        p, g = np.ones(n, np.float32), np.ones(n, np.float32)
        state = opt.init(p)
        seen.append(drivers.apply(opt.rule, opt.slots, p, g, opt._state_arrays(state), 1.0, 0.0,
                                  opt.coefficients(0.1, 1), opt.flags(), True))
    assert seen == ["numpy", "numba"]


def test_numba_reads_grads_only_and_numpy_consumes_them(monkeypatch):
    monkeypatch.setattr(drivers, "PARALLEL_MIN", 0)
    for fused, untouched in ((True, True), (False, False)):
        opt = Adam(learning_rate=0.1, fused=fused)
        params, grads = np.ones(1000, np.float32), np.full(1000, 2.0, np.float32)
        state = opt.init(params)
        opt.update(params, grads, state)
        np.testing.assert_allclose(params, 1.0 - 0.1, rtol=1e-6)   # first Adam step: lr * sign(g)
        np.testing.assert_allclose(state["m"], 0.2, rtol=1e-6)
        assert np.array_equal(grads, np.full(1000, 2.0, np.float32)) == untouched


def test_falls_back_to_numpy_when_numba_cannot_run(monkeypatch):
    monkeypatch.setattr(drivers, "PARALLEL_MIN", 0)    # only the conditions below can refuse
    opt = Adam()
    z = np.zeros(64)
    args = [opt.coefficients(1e-3, 1), opt.flags(), True]
    assert drivers.apply(opt.rule, opt.slots, z[::2], np.zeros(32), [z[:32].copy(), z[:32].copy(), None],
                         1.0, 0.0, *args) == "numpy"                              # not contiguous
    assert drivers.apply(opt.rule, opt.slots, z, np.zeros(64, np.float32), [z.copy(), z.copy(), None],
                         1.0, 0.0, *args) == "numpy"                              # mixed dtypes
    h = z.astype(np.float16)
    assert drivers.apply(opt.rule, opt.slots, h, h + 1, [h.copy(), h.copy(), None],
                         1.0, 0.0, *args) == "numpy"                              # float16


def test_the_thread_split_changes_nothing(monkeypatch):
    monkeypatch.setattr(drivers, "PARALLEL_MIN", 0)
    before = numba.get_num_threads()
    case = next(c for c in CASES if c.id == "adam")
    try:
        backend.set_num_threads(1)
        assert numba.get_num_threads() == 1
        one, _ = run(case, "numba", np.float32, N, monkeypatch=monkeypatch)
        backend.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many, _ = run(case, "numba", np.float32, N, monkeypatch=monkeypatch)
        np.testing.assert_array_equal(one, many)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("fused", [False, True])
def test_centered_rmsprop_stays_finite_under_a_constant_gradient(fused, monkeypatch):
    # v - mg**2 -> 0 when the gradient stops changing; float32 rounding made it slightly
    # negative and the root NaN (found by the benchmark, which repeats one gradient)
    monkeypatch.setattr(drivers, "PARALLEL_MIN", 0)
    g = np.random.default_rng(3).standard_normal(20_000).astype(np.float32)
    opt = RMSprop(learning_rate=1e-3, centered=True, momentum=0.9, fused=fused)
    params = np.zeros(20_000, np.float32)
    state = opt.init(params)
    for _ in range(2000):
        opt.update(params, g.copy(), state)
    raw = state["rms"] - state["mean_grad"] ** 2
    assert (raw < 0).any(), "test set-up: rounding never made the variance negative"
    assert np.isfinite(params).all()


# ------------------------------------------------------------------ a new optimizer, written once
def signum_rule(p, g, m, lr, beta, one_minus_beta):
    m = m * beta + one_minus_beta * g
    return p - sign(m) * lr, m


class Signum(Optimizer):
    """signSGD with momentum (Bernstein et al. 2018): a rule and a declaration, no registry."""
    hyperparameters = declare(learning_rate(1e-3), Hyper("beta", 0.9, UNIT, "momentum decay"))
    rule = staticmethod(signum_rule)
    slots = ("m",)

    def coefficients(self, lr, t):
        return lr, self.beta, 1.0 - self.beta


def test_a_new_rule_runs_the_same_on_every_backend(monkeypatch, device):
    monkeypatch.setattr(drivers, "PARALLEL_MIN", 0)
    backend.set_backend("numpy")
    results = {}
    for name in ("numpy", "numba", "device"):
        backend.set_backend("cupy" if name == "device" else "numpy")
        opt = Signum(learning_rate=0.01, fused=name == "numba")
        p = np.linspace(-1, 1, 5001)
        p = fake_cupy.module.asarray(p) if name == "device" else p
        state = opt.init(p)
        for k in range(5):
            g = np.cos(np.arange(5001) * (k + 1.0))
            opt.update(p, fake_cupy.module.asarray(g) if name == "device" else g, state)
        results[name] = p.get() if name == "device" else p
    np.testing.assert_array_equal(results["numba"], results["numpy"])
    np.testing.assert_array_equal(results["device"], results["numpy"])
    assert np.abs(results["numpy"] - np.linspace(-1, 1, 5001)).max() > 0.04


# ------------------------------------------------------------------ what a rule may not do
def literal_rule(p, g, lr):
    return (p - g * lr * 2.0,)


def branching_rule(p, g, lr):
    return (p - lr * g if g > lr else p,)


def absent_rule(p, g, m, lr, use_m):
    return p - (m + g) * lr, m


@pytest.mark.parametrize("rule,slots,present,flags,message", [
    (literal_rule, (), (), (), "numeric literal"),
    (branching_rule, (), (), (), "branches on its flags only"),
    (absent_rule, ("m",), (False,), (False,), "state slot 'm'"),
])
def test_the_numpy_backend_refuses_what_numba_would_miscompile(rule, slots, present, flags, message):
    with pytest.raises(TypeError, match=message):
        Program(rule, slots, present, flags, False, False)


# ------------------------------------------------------------------ numba's on-disk cache
def test_compiled_drivers_are_cached_on_disk_between_processes(tmp_path):
    script = ("import numpy as np\n"
              "from gradfit.optimizers import Adam, drivers, numba_driver\n"
              "opt = Adam(); p = np.ones(drivers.PARALLEL_MIN, np.float32); s = opt.init(p)\n"
              "opt.update(p, np.ones_like(p), s)\n"
              "d = numba_driver.driver(Adam.rule, 3, (True, True, False))\n"
              "print(sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))\n")
    env = {**os.environ, "GRADFIT_KERNEL_CACHE": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                          os.environ.get("PYTHONPATH", "")])}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    hits = [int(r[0]) for r in runs]
    assert hits == [0, 1], runs                                  # compiled once, then loaded
    assert len(list(tmp_path.glob("adam_rule_*.py"))) == 1
