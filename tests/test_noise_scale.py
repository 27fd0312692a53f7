"""Gradient noise scale (issue #6): estimators, exact per-example norms, critical-batch fit,
plots and the GradientNoiseScale callback.  Reference values are written in the tests
(closed forms of linear regression, brute-force per-example gradients in float64)."""
import math

import numpy as np
import pytest

from gradfit.callbacks.gradient_noise_scale import GradientNoiseScale
from gradfit.noise_scale import (
    NoiseScaleEstimator,
    b_crit,
    b_simple_exact,
    exact_estimates,
    fit_steps_examples,
    frontier,
    mean_grad_sq_norm,
    per_example_grad_sq_norms,
    plot_b_simple,
    plot_frontier,
    two_batch_estimates,
)


# ---------------------------------------------------------------------------------------------
# Linear regression with known G and Sigma.
# x ~ N(0, I_d), y = x.w* + eps, eps ~ N(0, s^2); loss l = 0.5 (x.w - y)^2 at w = w* + u.
# g = x (x.u - eps):  G = E[x x^T] u = u, so |G|^2 = |u|^2;
# E|g|^2 = E[|x|^2 (x.u)^2] + s^2 E|x|^2 = (d + 2)|u|^2 + d s^2  (Gaussian 4th moments), so
# tr(Sigma) = E|g|^2 - |G|^2 = (d + 1)|u|^2 + d s^2.
# ---------------------------------------------------------------------------------------------
class LinReg:
    def __init__(self, d=32, noise=2.0, seed=0):
        self.rng = np.random.default_rng(seed)
        self.d, self.noise = d, noise
        self.w_star = self.rng.normal(size=d)
        self.u = self.rng.normal(size=d) / np.sqrt(d)
        self.w = self.w_star + self.u
        self.g_sq = float(self.u @ self.u)
        self.trace = (d + 1) * self.g_sq + d * noise**2
        self.b_simple = self.trace / self.g_sq

    def batch(self, b):
        """x (b, d) and the residual r (b,): per-example gradients are x * r[:, None]."""
        x = self.rng.normal(size=(b, self.d))
        y = x @ self.w_star + self.noise * self.rng.normal(size=b)
        return x, x @ self.w - y


def test_linear_regression_closed_form_is_right():
    # guards the reference itself: a 200k-example float64 sample agrees with the closed form
    p = LinReg(d=6, noise=1.0, seed=3)
    x, r = p.batch(200_000)
    g = x * r[:, None]
    assert np.allclose(g.mean(0), p.u, atol=0.02)
    assert np.trace(np.cov(g.T)) == pytest.approx(p.trace, rel=0.02)


def test_two_batch_estimates_formula():
    g2, tr = two_batch_estimates(3.0, 2.0, 4, 16)
    assert g2 == pytest.approx((16 * 2.0 - 4 * 3.0) / 12)
    assert tr == pytest.approx((3.0 - 2.0) / (1 / 4 - 1 / 16))
    # expectations in, truth out: E|G_B|^2 = |G|^2 + tr/B
    g2, tr = two_batch_estimates(1.5 + 40.0 / 8, 1.5 + 40.0 / 64, 8, 64)
    assert (g2, tr) == (pytest.approx(1.5), pytest.approx(40.0))


def test_smoothed_estimator_converges_on_linear_regression():
    p = LinReg(d=32, noise=2.0, seed=0)
    b_small, b_big = 64, 1024
    est = NoiseScaleEstimator(b_small, b_big, ema=0.995)
    raw = []
    for _ in range(1500):
        x, r = p.batch(b_big)
        g = x * r[:, None]
        gs, gb = g[:b_small].mean(0), g.mean(0)  # the small batch is part of the big one, as in DP
        est.update(gs @ gs, gb @ gb)
        raw.append(two_batch_estimates(gs @ gs, gb @ gb, b_small, b_big))
    # the one-step estimates are unbiased ...
    mean_g2, mean_tr = np.mean(raw, axis=0)
    assert mean_g2 == pytest.approx(p.g_sq, rel=0.03)
    assert mean_tr == pytest.approx(p.trace, rel=0.03)
    # ... and the separately smoothed EMAs and their ratio converge
    assert est.g_sq == pytest.approx(p.g_sq, rel=0.03)
    assert est.trace_sigma == pytest.approx(p.trace, rel=0.06)
    assert est.b_simple == pytest.approx(p.b_simple, rel=0.06)
    assert est.status == "ok"


def test_exact_per_example_estimates_converge_on_linear_regression():
    # the same problem seen as one bias-free Dense layer: x (B, d), dz of the batch-mean loss r/B
    p = LinReg(d=32, noise=2.0, seed=1)
    b = 256
    est = NoiseScaleEstimator(1, b, ema=0.99)
    for _ in range(800):
        x, r = p.batch(b)
        ios = [(x, (r / b)[:, None])]
        sq = per_example_grad_sq_norms(ios, scale=b, use_bias=False)
        e = exact_estimates(sq, mean_grad_sq_norm(ios, scale=b, use_bias=False))
        est.update_estimates(e.g_sq, e.trace_sigma)
    assert est.g_sq == pytest.approx(p.g_sq, rel=0.03)
    assert est.trace_sigma == pytest.approx(p.trace, rel=0.03)
    assert est.b_simple == pytest.approx(p.b_simple, rel=0.05)


def test_exact_estimates_equal_two_batch_estimates_with_b_small_one():
    rng = np.random.default_rng(5)
    g = rng.normal(size=(12, 7)) + 0.8
    sq = np.sum(g * g, axis=1)
    gb = g.mean(0)
    e = exact_estimates(sq, gb @ gb)
    g2, tr = two_batch_estimates(sq.mean(), gb @ gb, 1, 12)
    assert (e.g_sq, e.trace_sigma) == (pytest.approx(g2, rel=1e-12), pytest.approx(tr, rel=1e-12))
    # and the sample formulas: Bessel-corrected covariance trace, bias-corrected |G|^2
    tr_sample = np.sum((g - gb) ** 2) / (12 - 1)
    assert e.trace_sigma == pytest.approx(tr_sample, rel=1e-12)
    assert e.g_sq == pytest.approx(gb @ gb - tr_sample / 12, rel=1e-12)
    assert b_simple_exact(sq, gb) == pytest.approx(tr_sample / (gb @ gb - tr_sample / 12), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Tiny 2-layer network in float64: z1 = x W1 + b1, h = tanh(z1), z2 = h W2 + b2,
# l_i = 0.5 |z2_i - y_i|^2.
# ---------------------------------------------------------------------------------------------
def tiny_net(n_in, n_hid, n_out, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n_in, n_hid)), rng.normal(size=n_hid),
            rng.normal(size=(n_hid, n_out)) / np.sqrt(n_hid), rng.normal(size=n_out)]


def per_example_grads_brute(params, x, y):
    """Each example's full gradient, materialised: (B, n_params)."""
    w1, b1, w2, b2 = params
    out = []
    for xi, yi in zip(x, y):
        h = np.tanh(xi @ w1 + b1)
        dz2 = h @ w2 + b2 - yi
        dz1 = (w2 @ dz2) * (1 - h * h)
        out.append(np.concatenate([np.outer(xi, dz1).ravel(), dz1, np.outer(h, dz2).ravel(), dz2]))
    return np.array(out)


def batch_layer_io(params, x, y):
    """What model.layer_io() gives: per Dense layer (input, d(batch-mean loss)/d(pre-activation))."""
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    dz2 = (h @ w2 + b2 - y) / x.shape[0]
    dz1 = (dz2 @ w2.T) * (1 - h * h)
    return [(x, dz1), (h, dz2)]


def loss_sum(params, x, y):
    w1, b1, w2, b2 = params
    return 0.5 * np.sum((np.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2)


def test_brute_force_reference_matches_finite_differences():
    params = tiny_net(3, 4, 2, seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(1, 3)), rng.normal(size=(1, 2))
    g = per_example_grads_brute(params, x, y)[0]
    flat = np.concatenate([p.ravel() for p in params])
    shapes = [p.shape for p in params]

    def unflat(v):
        out, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(v[k:k + n].reshape(s))
            k += n
        return out

    eps = 1e-6
    fd = np.array([(loss_sum(unflat(flat + eps * e), x, y) - loss_sum(unflat(flat - eps * e), x, y))
                   / (2 * eps) for e in np.eye(flat.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shape", [(7, 3, 4, 2), (5, 20, 30, 2), (1, 3, 2, 2), (16, 9, 1, 5)])
def test_cheap_per_example_norms_equal_brute_force(shape):
    b, n_in, n_hid, n_out = shape
    params = tiny_net(n_in, n_hid, n_out, seed=b)
    rng = np.random.default_rng(10 + b)
    x, y = rng.normal(size=(b, n_in)), rng.normal(size=(b, n_out))
    g = per_example_grads_brute(params, x, y)
    ios = batch_layer_io(params, x, y)
    cheap = per_example_grad_sq_norms(ios, scale=b)
    np.testing.assert_allclose(cheap, np.sum(g * g, axis=1), rtol=1e-12)
    gm = g.mean(0)
    # (5, 20, 30, 2) takes the Gram-matrix path for layer 1, the others the direct product
    assert mean_grad_sq_norm(ios, scale=b) == pytest.approx(gm @ gm, rel=1e-12)


def test_per_example_norms_without_bias_and_wrong_scale():
    params = tiny_net(4, 3, 2, seed=2)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    g = per_example_grads_brute(params, x, y)
    ios = batch_layer_io(params, x, y)
    # columns: W1 0:12, b1 12:15, W2 15:21, b2 21:23
    w_only = np.concatenate([g[:, :12], g[:, 15:21]], axis=1)
    np.testing.assert_allclose(per_example_grad_sq_norms(ios, scale=6, use_bias=False),
                               np.sum(w_only**2, axis=1), rtol=1e-12)
    np.testing.assert_allclose(per_example_grad_sq_norms(ios, scale=6, use_bias=[True, False]),
                               np.sum(g[:, :21] ** 2, axis=1), rtol=1e-12)  # all but b2
    # dz of the batch mean without scale=B is B^2 too small: the convention matters
    np.testing.assert_allclose(per_example_grad_sq_norms(ios) * 36, np.sum(g * g, axis=1), rtol=1e-12)


def test_b_simple_exact_on_tiny_net_matches_sample_formula():
    params = tiny_net(3, 5, 2, seed=4)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 2)) + 3.0
    g = per_example_grads_brute(params, x, y)
    gm = g.mean(0)
    tr = np.sum((g - gm) ** 2) / 31
    expect = tr / (gm @ gm - tr / 32)
    ios = batch_layer_io(params, x, y)
    got = b_simple_exact(per_example_grad_sq_norms(ios, scale=32), gm)
    assert got == pytest.approx(expect, rel=1e-10)


# ---------------------------------------------------------------------------------------------
# The EMA, availability and bad input
# ---------------------------------------------------------------------------------------------
def test_ema_bias_correction_and_min_steps():
    est = NoiseScaleEstimator(4, 16, ema=0.9, min_steps=3)
    assert est.b_simple is None and est.g_sq is None
    pairs = [(3.0, 2.0), (2.5, 1.8), (2.8, 2.1)]
    one = [two_batch_estimates(a, b, 4, 16) for a, b in pairs]
    est.update(*pairs[0])
    assert est.g_sq == pytest.approx(one[0][0]) and est.trace_sigma == pytest.approx(one[0][1])
    assert est.b_simple is None and est.status.startswith("warming up: 1 of min_steps=3")
    est.update(*pairs[1])
    assert est.trace_sigma == pytest.approx((0.9 * one[0][1] + one[1][1]) / 1.9)
    assert est.b_simple is None
    value = est.update(*pairs[2])
    w = np.array([0.81, 0.9, 1.0]) / 2.71
    g2, tr = w @ np.array(one)
    assert value == est.b_simple == pytest.approx(tr / g2)
    assert est.status == "ok"


def test_non_positive_denominator_is_reported_not_raised():
    est = NoiseScaleEstimator(8, 64, min_steps=1)
    assert est.update(1.0, 0.1) is None  # |G|^2 = (64*0.1 - 8)/56 < 0
    assert est.g_sq < 0
    assert "non-positive" in est.status
    e = exact_estimates(np.array([5.0, 5.0, 5.0]), 0.01)
    assert e.b_simple is None and e.g_sq < 0 and "not available" in e.status
    assert b_simple_exact(np.array([1.0, 1.0]), np.zeros(3)) is None


@pytest.mark.parametrize("b_small,b_big", [(16, 16), (32, 16), (0, 16), (-4, 8), (4, math.nan),
                                           (True, 8), ("4", 8)])
def test_bad_batch_sizes(b_small, b_big):
    with pytest.raises(ValueError, match="b_small|b_big"):
        NoiseScaleEstimator(b_small, b_big)
    with pytest.raises(ValueError, match="b_small|b_big"):
        two_batch_estimates(1.0, 0.5, b_small, b_big)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_bad_norms(bad):
    est = NoiseScaleEstimator(4, 16)
    with pytest.raises(ValueError, match=r"g_small_sq.*(nan|inf|-1\.0)"):
        est.update(bad, 1.0)
    with pytest.raises(ValueError, match="g_big_sq"):
        est.update(1.0, bad)
    assert est.steps == 0
    with pytest.raises(ValueError, match="squared norms"):
        exact_estimates(np.array([1.0, bad]), 0.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ema"):
        NoiseScaleEstimator(4, 16, ema=1.0)
    with pytest.raises(ValueError, match="min_steps"):
        NoiseScaleEstimator(4, 16, min_steps=0)
    with pytest.raises(TypeError, match="g_small_sq"):
        NoiseScaleEstimator(4, 16).update("x", 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        exact_estimates(np.array([1.0]), 0.5)
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="same batch size"):
        per_example_grad_sq_norms([(x, np.ones((5, 2)))])
    with pytest.raises(ValueError, match="use_bias has 1 entries for 2 layers"):
        per_example_grad_sq_norms([(x, x), (x, x)], use_bias=[True])
    with pytest.raises(ValueError, match="empty"):
        mean_grad_sq_norm([])


def test_estimator_state_round_trip():
    a = NoiseScaleEstimator(4, 16, min_steps=1)
    for k in range(5):
        a.update(3.0 + 0.1 * k, 2.0)
    b = NoiseScaleEstimator(4, 16, min_steps=1)
    b.set_state(a.get_state())
    a.update(3.3, 2.1), b.update(3.3, 2.1)
    assert b.b_simple == a.b_simple and b.steps == 6


# ---------------------------------------------------------------------------------------------
# Critical batch size
# ---------------------------------------------------------------------------------------------
S_MIN, E_MIN = 1000.0, 64000.0  # B_crit = 64
SWEEP = 2.0 ** np.arange(2, 13)


def synthetic_sweep(noise=0.0, seed=0):
    s = S_MIN * (1 + (E_MIN / S_MIN) / SWEEP)
    s = s * np.exp(noise * np.random.default_rng(seed).normal(size=s.size))
    return s, SWEEP * s


@pytest.mark.parametrize("method", ["log", "linear"])
def test_fit_recovers_exact_relation(method):
    s, e = synthetic_sweep()
    s_min, e_min = fit_steps_examples(s, e, method=method)
    assert (s_min, e_min) == (pytest.approx(S_MIN, rel=1e-6), pytest.approx(E_MIN, rel=1e-6))
    assert b_crit(s_min, e_min) == pytest.approx(64.0, rel=1e-6)


def test_fit_with_noise_and_an_outlier():
    s, e = synthetic_sweep(noise=0.03, seed=1)
    s_min, e_min = fit_steps_examples(s, e)
    assert s_min == pytest.approx(S_MIN, rel=0.06) and e_min == pytest.approx(E_MIN, rel=0.06)
    s[4] *= 2.0  # one run that needed twice the steps (an unlucky loss curve)
    e[4] *= 2.0
    s_rob, e_rob = fit_steps_examples(s, e, robust=True)
    s_ls, e_ls = fit_steps_examples(s, e, robust=False)
    assert e_rob == pytest.approx(E_MIN, rel=0.08) and s_rob == pytest.approx(S_MIN, rel=0.08)
    assert abs(e_rob / E_MIN - 1) < abs(e_ls / E_MIN - 1)


def test_frontier_points_satisfy_relation():
    s, e = frontier(S_MIN, E_MIN, n=50)
    np.testing.assert_allclose((s / S_MIN - 1) * (e / E_MIN - 1), 1.0, rtol=1e-12)
    s, e = frontier(S_MIN, E_MIN, batch_sizes=[64.0, 8.0])
    np.testing.assert_allclose([s[0], e[0]], [2 * S_MIN, 2 * E_MIN])
    np.testing.assert_allclose(e / s, [64.0, 8.0])


def test_fit_bad_input():
    with pytest.raises(ValueError, match="same length"):
        fit_steps_examples([1, 2, 3], [4, 5])
    with pytest.raises(ValueError, match="different batch sizes"):
        fit_steps_examples([10, 20], [100, 200])
    with pytest.raises(ValueError, match=r"> 0.*-5"):
        fit_steps_examples([10, -5], [100, 200])
    with pytest.raises(ValueError, match="method"):
        fit_steps_examples([10, 20], [100, 400], method="cubic")
    with pytest.raises(ValueError, match="S_min and E_min"):
        b_crit(0.0, 10.0)
    with pytest.raises(ValueError, match="n must be"):
        frontier(1.0, 2.0, n=1)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------
def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    Image = pytest.importorskip("PIL.Image")
    s, e = synthetic_sweep(noise=0.02)
    p1 = tmp_path / "frontier.png"
    fitted = plot_frontier(s, e, p1, b_simple=40.0)
    assert fitted[0] == pytest.approx(S_MIN, rel=0.05)
    p2 = tmp_path / "bsimple.png"
    plot_b_simple([1, 2, 3, 4], [None, None, 30.0, 35.0], p2, b_crit=64.0)
    for p in (p1, p2):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size == (640, 480)
            assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 10  # drawn
    with pytest.raises(ValueError, match="differ in length"):
        plot_b_simple([1, 2], [1.0], tmp_path / "x.png")


# ---------------------------------------------------------------------------------------------
# The callback, against a scripted model exposing layer_io()
# ---------------------------------------------------------------------------------------------
class ScriptedModel:
    def __init__(self, seed=0):
        self.params = tiny_net(3, 6, 2, seed=seed)
        self.rng = np.random.default_rng(seed)
        self.ios = None

    def step(self, b):
        x = self.rng.normal(size=(b, 3))
        y = self.rng.normal(size=(b, 2)) + 1.0
        self.batch = (x, y)
        self.ios = batch_layer_io(self.params, x, y)

    def layer_io(self):
        return self.ios


def test_callback_matches_direct_computation():
    model = ScriptedModel()
    cb = GradientNoiseScale(ema=0.9, min_steps=5, every=1)
    cb.set_model(model)
    ref = NoiseScaleEstimator(1, 2, ema=0.9, min_steps=5)
    logs = {}
    for k in range(8):
        model.step(16)
        cb.on_train_batch_end(k, {})
        g = per_example_grads_brute(model.params, *model.batch)
        gm = g.mean(0)
        e = exact_estimates(np.sum(g * g, axis=1), gm @ gm)
        ref.update_estimates(e.g_sq, e.trace_sigma)
        if k == 2:
            cb.on_epoch_end(0, logs)
            assert math.isnan(logs["b_simple"]) and cb.status.startswith("warming up")
    assert cb.history["b_simple"][:4] == [None] * 4
    assert cb.b_simple == pytest.approx(ref.b_simple, rel=1e-10)
    assert cb.history["g_sq"][-1] == pytest.approx(ref.g_sq, rel=1e-10)
    cb.on_epoch_end(1, logs)
    assert logs["b_simple"] == pytest.approx(ref.b_simple, rel=1e-10)
    assert logs["noise_trace_sigma"] == pytest.approx(ref.trace_sigma, rel=1e-10)


def test_callback_every_and_state():
    model = ScriptedModel(seed=1)
    cb = GradientNoiseScale(every=3, min_steps=1)
    cb.set_model(model)
    for k in range(7):
        model.step(8)
        cb.on_train_batch_end(k, {})
    assert cb.history["step"] == [1, 4, 7]
    other = GradientNoiseScale(every=3, min_steps=1)
    other.set_model(model)
    other.set_state(cb.get_state())
    for c in (cb, other):
        for k in range(3):
            model.rng = np.random.default_rng(99 + k)
            model.step(8)
            c.on_train_batch_end(k, {})
    assert other.history == cb.history and other.b_simple == cb.b_simple
    with pytest.raises(ValueError, match="every"):
        GradientNoiseScale(every=0)


class FakeComm:
    """Two ranks that hold identical batches: allreduce_ doubles the buffer."""

    size, rank = 2, 0

    def allreduce_(self, buf):
        buf *= 2
        return buf


def test_callback_data_parallel_scaling():
    # each of 2 ranks holds the same 8 examples; dz is of the GLOBAL mean (denom 16), so the
    # per-example gradients are dz * 16 and the estimate equals the serial one on those 8
    params = tiny_net(3, 4, 2, seed=7)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)) + 1.0
    serial = batch_layer_io(params, x, y)
    model = ScriptedModel()
    model.comm = FakeComm()
    model.ios = [(a, dz / 2) for a, dz in serial]
    cb = GradientNoiseScale(ema=0.0, min_steps=1, every=1)
    cb.set_model(model)
    cb.on_train_batch_end(0, {})
    g = per_example_grads_brute(params, x, y)
    gm = g.mean(0)
    e = exact_estimates(np.sum(g * g, axis=1), gm @ gm)
    assert cb.estimator.g_sq == pytest.approx(e.g_sq, rel=1e-10)
    assert cb.estimator.trace_sigma == pytest.approx(e.trace_sigma, rel=1e-10)


def test_callback_on_a_real_model_matches_per_example_gradients():
    import gradfit
    from gradfit import Dense, Input, Sequential

    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(5,)), Dense(7, activation="tanh"),
                        Dense(3, activation="softmax", use_bias=False)], dtype="float64")
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x_all = rng.normal(size=(48, 5))
    y_all = np.argmax(x_all[:, :3], axis=1)   # learnable labels: a clear mean gradient
    x, y = x_all[:12], y_all[:12]
    model.fit(x, y, batch_size=12, epochs=1, verbose=0)  # builds it
    per_example = []
    for i in range(12):   # brute force: the model's own gradient of one example (denom 1)
        model.compute_gradients(x[i:i + 1], y[i:i + 1], denom=1)
        per_example.append(np.array(model.grads, copy=True))
    g = np.array(per_example)
    model.compute_gradients(x, y)
    cb = GradientNoiseScale(ema=0.0, min_steps=1, every=1)   # use_bias="auto" sees the False
    cb.set_model(model)
    cb.on_train_batch_end(0, {})
    gm = g.mean(0)
    np.testing.assert_allclose(gm, model.grads, rtol=1e-10, atol=1e-14)
    e = exact_estimates(np.sum(g * g, axis=1), gm @ gm)
    assert cb.b_simple == pytest.approx(e.b_simple, rel=1e-9)
    # and through fit: History records the epoch value
    cb = GradientNoiseScale(min_steps=5, every=1)
    hist = model.fit(x_all, y_all, batch_size=12, epochs=3, verbose=0, callbacks=[cb])
    values = hist.history["b_simple"]   # 4, 8, 12 steps measured by the epoch ends
    assert math.isnan(values[0]) and values[1] > 0 and values[2] == cb.b_simple
    assert cb.history["step"] == list(range(1, 13))
