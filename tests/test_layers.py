"""Layers: float64 finite-difference checks of every forward/backward pair at random shapes,
views aliasing the flat buffers, initializer statistics, and construction-time validation."""
from __future__ import annotations

import numpy as np
import pytest

import gradfit
from gradfit import Activation, Dense, Dropout, Input, Sequential, initializers
from gradfit.layers import activations
from gradfit.layers import dense as dense_mod

from conftest import mlp, numerical_grad, rel_error

ACTS = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu"]
SEEDS = [0, 1, 2]


def _layer_grads(model, x, r, dropout_seed=None):
    """Analytic d/d(params) and d/dx of f = sum(r * model.forward(x, training=True)).

    The first layer is told to compute its input gradient so that dx is checked too; with
    `dropout_seed` the generator is reseeded before every forward, fixing the dropout mask.
    """
    model.layers[0].needs_input_grad = True

    def f():
        if dropout_seed is not None:
            gradfit.set_random_seed(dropout_seed)
        return float(np.sum(r * model.forward(x, training=True)))

    f()
    dy = r.copy()
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
    analytic_p, analytic_x = model.grads.copy(), np.array(dy, copy=True)
    num_p = numerical_grad(f, model.params) if model.params.size else np.zeros(0)
    num_x = numerical_grad(f, x)
    return analytic_p, num_p, analytic_x, num_x


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_dense_gradients_match_finite_differences(act, seed):
    rs = np.random.default_rng(seed)
    n_in, units, batch = rs.integers(1, 6), rs.integers(2, 6), rs.integers(1, 5)
    model = mlp([n_in, units], [act], dtype="float64", seed=seed)
    # a non-zero bias so that the bias gradient is exercised away from symmetric points
    model.layers[0].bias[...] = rs.normal(size=units)
    x = rs.normal(size=(batch, n_in))
    z = x @ model.layers[0].kernel + model.layers[0].bias
    if act in ("relu", "leaky_relu"):    # keep probes away from the kink at 0
        assert np.abs(z).min() > 1e-4, "test set-up: pre-activation too close to the kink"
    r = rs.normal(size=(batch, units))
    ap, nump, ax, numx = _layer_grads(model, x, r)
    assert rel_error(ap, nump) < 1e-6
    assert rel_error(ax, numx) < 1e-6


@pytest.mark.parametrize("act", ACTS)
def test_activation_layer_gradients_match_finite_differences(act):
    rs = np.random.default_rng(7)
    for batch, width in [(1, 3), (4, 5), (3, 2)]:
        model = Sequential([Input(shape=(width,)), Activation(act)], dtype="float64")
        model.build()
        x = rs.normal(size=(batch, width))
        r = rs.normal(size=(batch, width))
        _, _, ax, numx = _layer_grads(model, x, r)
        assert rel_error(ax, numx) < 1e-6


def test_dense_without_bias_gradients():
    rs = np.random.default_rng(3)
    model = mlp([4, 3], ["tanh"], dtype="float64", use_bias=False)
    assert model.count_params() == 12
    x, r = rs.normal(size=(5, 4)), rs.normal(size=(5, 3))
    ap, nump, ax, numx = _layer_grads(model, x, r)
    assert rel_error(ap, nump) < 1e-6 and rel_error(ax, numx) < 1e-6


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_gradients_with_a_fixed_mask(seed):
    rs = np.random.default_rng(seed)
    gradfit.set_random_seed(seed)
    model = Sequential([Input(shape=(4,)), Dense(6, activation="tanh"), Dropout(0.4),
                        Dense(3, activation="sigmoid")], dtype="float64")
    model.build()
    x, r = rs.normal(size=(5, 4)), rs.normal(size=(5, 3))
    ap, nump, ax, numx = _layer_grads(model, x, r, dropout_seed=100 + seed)
    assert rel_error(ap, nump) < 1e-6
    assert rel_error(ax, numx) < 1e-6
    mask = model.layers[1]._mask
    assert set(np.unique(mask)) <= {0.0, 1 / 0.6}, "inverted dropout scales survivors by 1/(1-rate)"
    assert (mask == 0).any() and (mask > 0).any(), "the mask under test drops some units, not all"


def test_dropout_is_identity_at_inference_and_drops_at_rate_in_training():
    gradfit.set_random_seed(0)
    layer = Dropout(0.3)
    layer.dtype = np.float64
    layer.build(200)
    x = np.ones((500, 200))
    assert layer.forward(x, training=False) is x
    y = layer.forward(x, training=True)
    dropped = float((y == 0).mean())
    assert abs(dropped - 0.3) < 0.01
    assert np.allclose(y[y != 0], 1 / 0.7)
    assert abs(y.mean() - 1.0) < 0.02, "inverted dropout keeps the expectation"


# ----------------------------------------------------------------------------- flat buffer
def test_views_alias_the_flat_buffers():
    model = mlp([5, 4, 3], ["relu", "softmax"])
    for layer in model.layers:
        for view in (layer.kernel, layer.bias):
            assert np.shares_memory(view, model.params)
        for view in (layer.kernel_grad, layer.bias_grad):
            assert np.shares_memory(view, model.grads)
    # layout: kernel then bias, layer after layer, Keras's order
    flat = np.concatenate([w.ravel() for w in model.get_weights()])
    np.testing.assert_array_equal(flat, model.params)
    # writing through a view changes the flat buffer, and the other way round
    model.layers[1].kernel[2, 1] = 42.0
    assert model.params[5 * 4 + 4 + 2 * 3 + 1] == 42.0
    model.params[5 * 4 + 1] = -7.0
    assert model.layers[0].bias[1] == -7.0
    model.layers[1].bias_grad[0] = 3.5
    assert model.grads[5 * 4 + 4 + 4 * 3] == 3.5
    model.grads[0] = 1.25
    assert model.layers[0].kernel_grad[0, 0] == 1.25


def test_backward_writes_into_the_flat_grad_buffer():
    rs = np.random.default_rng(0)
    model = mlp([3, 4, 2], ["tanh", "linear"], dtype="float64")
    model.compile("sgd", "mse")
    model.prepare(np.zeros((1, 3)))
    before = model.grads
    model.compute_gradients(rs.normal(size=(6, 3)), rs.normal(size=(6, 2)))
    assert model.grads is before or np.shares_memory(model.grads, before)
    assert np.abs(model.grads).sum() > 0
    for layer in model.layers:
        assert np.shares_memory(layer.kernel_grad, model.grads)
        assert np.abs(layer.kernel_grad).sum() > 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_buffers_have_the_model_dtype(dtype):
    model = mlp([3, 4, 2], ["relu", "linear"], dtype=dtype)
    assert model.params.dtype == np.dtype(dtype) and model.grads.dtype == np.dtype(dtype)
    assert model.params.ndim == 1 and model.params.flags.c_contiguous
    assert model.layers[0].kernel.dtype == np.dtype(dtype)
    out = model.predict(np.ones((2, 3)))
    assert out.dtype == np.dtype(dtype)


def test_default_dtype_is_float32_and_bad_dtype_rejected():
    assert mlp([2, 2], ["relu"]).params.dtype == np.float32
    with pytest.raises(ValueError, match="float16"):
        Sequential([Dense(2)], dtype="float16")


# ----------------------------------------------------------------------------- initializers
def test_glorot_uniform_limits_and_variance():
    rs = np.random.default_rng(0)
    fan_in, fan_out = 300, 500
    w = initializers.get("glorot_uniform")((fan_in, fan_out), rs)
    lim = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= lim
    assert np.abs(w).max() > 0.99 * lim
    assert abs(w.mean()) < 0.01 * lim
    assert abs(w.var() / (lim**2 / 3) - 1) < 0.02


@pytest.mark.parametrize("name,std_of_fan_in", [("he_normal", lambda n: np.sqrt(2 / n)),
                                                ("lecun_normal", lambda n: np.sqrt(1 / n))])
def test_truncated_normal_initializers_std(name, std_of_fan_in):
    rs = np.random.default_rng(0)
    fan_in = 400
    w = initializers.get(name)((fan_in, 600), rs)
    std = std_of_fan_in(fan_in)
    assert abs(w.std() / std - 1) < 0.03
    # truncated at two standard deviations of the underlying (scaled) normal
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-12


def test_he_uniform_limit_and_constant_initializers():
    rs = np.random.default_rng(0)
    w = initializers.get("he_uniform")((50, 80), rs)
    assert np.abs(w).max() <= np.sqrt(6 / 50) and np.abs(w).max() > 0.95 * np.sqrt(6 / 50)
    assert not initializers.get("zeros")((3,), rs).any()
    assert (initializers.get("ones")((2, 2), rs) == 1).all()


def test_dense_uses_its_initializers():
    model = mlp([10, 20], ["relu"], kernel_initializer="ones", bias_initializer="ones")
    assert (model.layers[0].kernel == 1).all() and (model.layers[0].bias == 1).all()
    default = mlp([10, 20], ["relu"])
    assert not default.layers[0].bias.any(), "bias_initializer defaults to zeros"
    assert np.abs(default.layers[0].kernel).max() <= np.sqrt(6 / 30)


def test_unknown_initializer_lists_valid_names():
    with pytest.raises(ValueError, match="glorot_nrmal") as e:
        Dense(3, kernel_initializer="glorot_nrmal")
    assert "glorot_uniform" in str(e.value) and "he_normal" in str(e.value)
    with pytest.raises(ValueError, match="zero'"):
        Dense(3, bias_initializer="zero")


def test_same_seed_same_weights_different_seed_different_weights():
    a = mlp([6, 5, 2], ["relu", "softmax"], seed=11)
    b = mlp([6, 5, 2], ["relu", "softmax"], seed=11)
    c = mlp([6, 5, 2], ["relu", "softmax"], seed=12)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    # float32 weights are the float64 draws cast: the same seed gives the same values
    d = mlp([6, 5, 2], ["relu", "softmax"], seed=11, dtype="float64")
    np.testing.assert_array_equal(a.params, d.params.astype(np.float32))


def test_set_random_seed_rejects_bad_seeds():
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            gradfit.set_random_seed(bad)


# ----------------------------------------------------------------------------- validation
def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="'relu6'") as e:
        Dense(4, activation="relu6")
    for name in ACTS:
        assert name in str(e.value)
    with pytest.raises(ValueError, match="'swish'"):
        Activation("swish")
    with pytest.raises(TypeError):
        Dense(4, activation=3)


@pytest.mark.parametrize("units", [0, -3, 2.5, True, "8"])
def test_units_must_be_a_positive_integer(units):
    with pytest.raises(ValueError, match=f"units must be an integer >= 1, got {units!r}"):
        Dense(units)


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, "0.5", None])
def test_dropout_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match=r"\[0, 1\)") as e:
        Dropout(rate)
    assert repr(rate) in str(e.value)


def test_dropout_rate_zero_is_allowed_and_is_identity():
    layer = Dropout(0.0)
    x = np.ones((2, 3))
    assert layer.forward(x, training=True) is x


@pytest.mark.parametrize("shape", [(2, 3), (), (0,), (-1,)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape|shape"):
        Sequential([Input(shape=shape), Dense(2)])


def test_leaky_relu_slope_is_kerass_default():
    act = activations.get("leaky_relu")
    z = np.array([[-2.0, 3.0]])
    np.testing.assert_allclose(act.forward(z, np.empty_like(z)), [[-0.4, 3.0]])


def test_sigmoid_and_softmax_forward_do_not_overflow():
    z = np.array([[-1e4, 0.0, 1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = activations.get("sigmoid").forward(z, np.empty_like(z))
        p = activations.get("softmax").forward(z, np.empty_like(z))
    np.testing.assert_array_equal(s, [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(p, [[0.0, 0.0, 1.0]])


def test_batch_of_one_kernel_gradient_is_the_outer_product():
    # B = 1 takes the broadcast-multiply path instead of BLAS: same numbers, same buffer
    gradfit.set_random_seed(5)
    model = Sequential([Input(shape=(7,)), Dense(5, activation="tanh"), Dense(3)], dtype="float64")
    model.compile("sgd", "mse")
    x = np.random.default_rng(1).normal(size=(1, 7))
    y = np.random.default_rng(2).normal(size=(1, 3))
    model.compute_gradients(x, y)
    first = model.layers[0]
    xin, dz = first.io()
    np.testing.assert_array_equal(first.kernel_grad, np.outer(xin[0], dz[0]))
    assert np.shares_memory(first.kernel_grad, model.grads)
    # and the whole gradient agrees with finite differences
    def loss(p):
        saved = model.params.copy(); model.params[...] = p
        value = model.loss(y, model.predict(x)); model.params[...] = saved
        return value
    p0, g = model.params.copy(), model.grads.copy()
    num = np.array([(loss(p0 + e) - loss(p0 - e)) / 2e-6 for e in np.eye(len(p0)) * 1e-6])
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("batch", [1, 2, dense_mod.TRANSPOSED_DX_MAX, dense_mod.TRANSPOSED_DX_MAX + 1, 300])
@pytest.mark.parametrize("n_in,units", [(1, 4), (6, 1), (6, 4)])
def test_every_product_path_gives_the_plain_formulas(batch, n_in, units):
    # Dense picks among matmul, broadcast multiply (inner dimension 1) and the transposed
    # dx product (batch <= TRANSPOSED_DX_MAX) by shape; all must equal x W, x^T dz, dz W^T
    rs = np.random.default_rng(batch + 10 * n_in + 100 * units)
    layer = mlp([n_in, units], ["linear"], dtype="float64", seed=batch).layers[0]
    layer.needs_input_grad = True
    layer.bias[...] = rs.normal(size=units)
    x = rs.normal(size=(batch, n_in))
    dz = rs.normal(size=(batch, units))
    z = layer.forward(x, training=True).copy()
    dx = np.array(layer.backward(dz.copy()), copy=True)
    np.testing.assert_allclose(z, x @ layer.kernel + layer.bias, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.kernel_grad, x.T @ dz, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.bias_grad, dz.sum(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx, dz @ layer.kernel.T, rtol=1e-13, atol=1e-13)
    assert dx.flags.c_contiguous  # the layer below works on it in place, row by row
