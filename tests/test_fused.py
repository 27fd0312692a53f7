"""Fused numba optimizer kernels: parity with the plain numpy path (fused=False)."""
import numpy as np
import pytest

pytest.importorskip("numba")

from gradfit.optim import fused  # noqa: E402
from gradfit.optim.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop  # noqa: E402

# every optimizer and every option the kernels cover (clipping and decay run in the base class)
CASES = {
    "sgd": lambda **k: SGD(learning_rate=0.1, **k),
    "sgd_wd": lambda **k: SGD(learning_rate=0.1, weight_decay=0.01, **k),
    "sgd_momentum": lambda **k: SGD(learning_rate=0.05, momentum=0.9, **k),
    "sgd_nesterov_wd": lambda **k: SGD(learning_rate=0.05, momentum=0.8, nesterov=True,
                                       weight_decay=0.02, **k),
    "sgd_clipvalue": lambda **k: SGD(learning_rate=0.05, momentum=0.9, clipvalue=0.5, **k),
    "adagrad": lambda **k: Adagrad(learning_rate=0.1, **k),
    "adagrad_inside_init": lambda **k: Adagrad(learning_rate=0.1, epsilon_inside_sqrt=True,
                                               initial_accumulator_value=0.1, epsilon=1e-7, **k),
    "rmsprop": lambda **k: RMSprop(learning_rate=0.01, **k),
    "rmsprop_inside": lambda **k: RMSprop(learning_rate=0.01, epsilon_inside_sqrt=True, **k),
    "rmsprop_momentum": lambda **k: RMSprop(learning_rate=0.01, momentum=0.9, **k),
    "rmsprop_centered": lambda **k: RMSprop(learning_rate=0.01, centered=True, epsilon=1e-3, **k),
    "rmsprop_centered_momentum_wd": lambda **k: RMSprop(learning_rate=0.01, momentum=0.5,
                                                        centered=True, epsilon=1e-3,
                                                        weight_decay=0.1, **k),
    "adadelta": lambda **k: Adadelta(**k),
    "adadelta_wd": lambda **k: Adadelta(learning_rate=0.5, rho=0.9, weight_decay=0.01, **k),
    "adam": lambda **k: Adam(learning_rate=0.01, **k),
    "adam_inside_globalclip": lambda **k: Adam(learning_rate=0.01, epsilon_inside_sqrt=True,
                                               global_clipnorm=1.0, **k),
    "amsgrad": lambda **k: Adam(learning_rate=0.01, amsgrad=True, **k),
    "adam_l2": lambda **k: Adam(learning_rate=0.01, weight_decay=0.05, **k),
    "adamw": lambda **k: AdamW(learning_rate=0.01, weight_decay=0.1, **k),
    "adamw_amsgrad": lambda **k: AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True, **k),
}


def _run(make, fused_flag, dtype, steps=20, n=50_003):
    """``steps`` updates on a fixed random gradient sequence; returns params and state."""
    rng = np.random.default_rng(0)
    opt = make(fused=fused_flag)
    params = rng.standard_normal(n).astype(dtype)
    state = opt.init(params)
    grads = [(rng.standard_normal(n) * rng.uniform(0.01, 2)).astype(dtype) for _ in range(steps)]
    for g in grads:
        opt.update(params, g.copy() + params * dtype(0.1), state)  # loss-like dependence on theta
    return params, state


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_matches_numpy(name, dtype, monkeypatch):
    monkeypatch.setattr(fused, "PARALLEL_MIN", 0)  # the multi-threaded, chunked path
    p_ref, s_ref = _run(CASES[name], False, dtype)
    p_fus, s_fus = _run(CASES[name], True, dtype)
    assert s_fus["step"] == s_ref["step"] == 20 and set(s_fus) == set(s_ref)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    assert p_fus.dtype == dtype
    np.testing.assert_allclose(p_fus, p_ref, **tol)
    for key in s_ref:
        if key != "step":
            np.testing.assert_allclose(s_fus[key], s_ref[key], **tol, err_msg=key)
    assert not np.array_equal(p_ref, _run(CASES[name], False, dtype, steps=1)[0])  # it moved


def test_small_buffers_take_the_numpy_path():
    opt = Adam(learning_rate=0.1)
    params = np.ones(1000, np.float32)
    assert 1000 < fused.PARALLEL_MIN
    assert fused.try_step(opt, params, np.ones(1000, np.float32), opt.init(params), 0.1) is False
    np.testing.assert_array_equal(params, 1.0)


def test_fused_path_is_taken_and_reads_grads_only(monkeypatch):
    monkeypatch.setattr(fused, "PARALLEL_MIN", 0)
    opt = Adam(learning_rate=0.1)
    params = np.ones(1000, np.float32)
    state = opt.init(params)
    grads = np.full(1000, 2.0, np.float32)
    assert fused.try_step(opt, params, grads, state, 0.1) is True
    np.testing.assert_allclose(params, 1.0 - 0.1, rtol=1e-6)  # first Adam step is lr * sign(g)
    np.testing.assert_array_equal(grads, 2.0)
    np.testing.assert_allclose(state["m"], 0.2, rtol=1e-6)


def test_decay_inside_the_kernel_matches_the_base_class(monkeypatch):
    monkeypatch.setattr(fused, "PARALLEL_MIN", 0)
    rng = np.random.default_rng(1)
    for cls in (Adam, AdamW, SGD):
        opt = cls(learning_rate=0.1, weight_decay=0.3, fused=False)
        p0, g0 = rng.standard_normal(777), rng.standard_normal(777)
        p_ref, s_ref = p0.copy(), opt.init(p0)
        opt.update(p_ref, g0.copy(), s_ref)
        p_fus, s_fus = p0.copy(), opt.init(p0)
        assert fused.try_step(opt, p_fus, g0.copy(), s_fus, 0.1, decay=True)
        np.testing.assert_allclose(p_fus, p_ref, rtol=1e-13, atol=1e-15)


def test_falls_back_when_it_cannot_fuse(monkeypatch):
    monkeypatch.setattr(fused, "PARALLEL_MIN", 0)  # only the conditions below can refuse
    opt = Adam()
    p = np.zeros(64)
    state = opt.init(p)
    assert not fused.try_step(opt, p[::2], np.zeros(32), {"step": 0, "m": p[:32].copy(),
                                                          "v": p[:32].copy()}, 1e-3)
    assert not fused.try_step(opt, p, np.zeros(64, np.float32), state, 1e-3)  # mixed dtypes
    assert not fused.try_step(opt, p.astype(np.float16), p.astype(np.float16),
                              {"step": 0, "m": p.astype(np.float16), "v": p.astype(np.float16)},
                              1e-3)

    class Custom(Adam):
        def _step(self, params, d, state, lr, t):
            params -= lr * d
    assert not fused.try_step(Custom(), p, np.ones(64), Custom().init(p), 1e-3)
    np.testing.assert_array_equal(p, 0.0)


def test_respects_num_threads(monkeypatch):
    monkeypatch.setattr(fused, "PARALLEL_MIN", 0)
    import numba

    from gradfit.backend import set_num_threads
    before = numba.get_num_threads()
    try:
        set_num_threads(1)
        assert numba.get_num_threads() == 1
        p1, _ = _run(CASES["adam"], True, np.float32, steps=3)
        set_num_threads(numba.config.NUMBA_NUM_THREADS)
        p2, _ = _run(CASES["adam"], True, np.float32, steps=3)
        np.testing.assert_array_equal(p1, p2)  # elementwise: the thread split changes nothing
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("fused_flag", [False, True])
def test_centered_rmsprop_stays_finite_under_a_constant_gradient(fused_flag, monkeypatch):
    # v - mg**2 -> 0 when the gradient stops changing; float32 rounding made it slightly
    # negative and the root NaN (found by the benchmark, which repeats one gradient)
    monkeypatch.setattr(fused, "PARALLEL_MIN", 0)
    rng = np.random.default_rng(3)
    g = rng.standard_normal(20_000).astype(np.float32)
    opt = RMSprop(learning_rate=1e-3, centered=True, momentum=0.9, fused=fused_flag)
    params = np.zeros(20_000, np.float32)
    state = opt.init(params)
    for _ in range(2000):
        opt.update(params, g.copy(), state)
    raw = state["rms"] - state["mean_grad"] ** 2
    assert (raw < 0).any(), "test set-up: rounding never made the variance negative"
    assert np.isfinite(params).all()
