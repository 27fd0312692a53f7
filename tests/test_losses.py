"""Losses: float64 finite-difference checks of every loss and every fused pair at random shapes,
values against torch, numerical stability of the fused pairs at logits of 1e4, the batch-mean
convention (denom), metrics, and names that do not exist."""
from __future__ import annotations

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Input, Sequential, losses, metrics

from conftest import mlp, numerical_grad, rel_error

SEEDS = [0, 1, 2, 3]


def _case(name, rs):
    """(y_pred, y_true) at a random shape, away from clipping thresholds and kinks."""
    B, d = int(rs.integers(1, 6)), int(rs.integers(2, 6))
    if name in ("mse", "mae"):
        y_pred, y_true = rs.normal(size=(B, d)), rs.normal(size=(B, d))
        if name == "mae":   # |yhat - y| >= 0.05: central differences never cross the kink
            diff = y_pred - y_true
            y_pred = y_true + np.sign(diff) * np.maximum(np.abs(diff), 0.05)
        return y_pred, y_true
    if name == "binary_crossentropy":
        return rs.uniform(0.05, 0.95, size=(B, d)), rs.uniform(0, 1, size=(B, d))
    # categorical: positive, NOT normalised predictions (the loss renormalises them)
    y_pred = rs.uniform(0.1, 1.0, size=(B, d))
    labels = rs.integers(0, d, size=B)
    if name == "sparse_categorical_crossentropy":
        return y_pred, labels
    return y_pred, np.eye(d)[labels]


LOSS_NAMES = ["mse", "mae", "binary_crossentropy", "categorical_crossentropy",
              "sparse_categorical_crossentropy"]


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("seed", SEEDS)
def test_loss_gradient_matches_finite_differences(name, seed):
    rs = np.random.default_rng(seed)
    loss = losses.get(name)
    y_pred, y_true = _case(name, rs)
    out = np.empty_like(y_pred)
    value, grad = loss.value_and_grad(y_pred, y_true, out)
    assert grad is out
    analytic = grad.copy()
    num = numerical_grad(lambda: loss.value_and_grad(y_pred, y_true, np.empty_like(y_pred))[0], y_pred)
    assert rel_error(analytic, num) < 1e-6
    # value_and_grad's value is the batch mean of per_example, i.e. loss(y_true, y_pred)
    assert value == pytest.approx(loss(y_true, y_pred), rel=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_denom_scales_value_and_gradient(name):
    """L = sum_i l_i / denom: denom = global batch lets ranks' gradients sum to the global mean."""
    rs = np.random.default_rng(5)
    loss = losses.get(name)
    y_pred, y_true = _case(name, rs)
    B = len(y_pred)
    v_mean, g_mean = loss.value_and_grad(y_pred, y_true, np.empty_like(y_pred))
    g_mean = g_mean.copy()
    v_sum, g_sum = loss.value_and_grad(y_pred, y_true, np.empty_like(y_pred), denom=1)
    assert v_sum == pytest.approx(B * v_mean, rel=1e-12)
    np.testing.assert_allclose(g_sum, B * g_mean, rtol=1e-12)
    # two halves with denom = B sum to the whole batch
    if B >= 2:
        h = B // 2
        va, ga = loss.value_and_grad(y_pred[:h], y_true[:h], np.empty_like(y_pred[:h]), denom=B)
        vb, gb = loss.value_and_grad(y_pred[h:], y_true[h:], np.empty_like(y_pred[h:]), denom=B)
        assert va + vb == pytest.approx(v_mean, rel=1e-12)
        np.testing.assert_allclose(np.concatenate([ga, gb]), g_mean, rtol=1e-12)


def test_loss_values_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rs = np.random.default_rng(0)
    t = torch.from_numpy
    for name, ref in [
        ("mse", lambda p, y: F.mse_loss(t(p), t(y))),
        ("mae", lambda p, y: F.l1_loss(t(p), t(y))),
        ("binary_crossentropy", lambda p, y: F.binary_cross_entropy(t(p), t(y))),
        ("categorical_crossentropy",
         lambda p, y: -(t(y) * torch.log(t(p) / t(p).sum(1, keepdim=True))).sum(1).mean()),
        ("sparse_categorical_crossentropy",
         lambda p, y: F.nll_loss(torch.log(t(p) / t(p).sum(1, keepdim=True)), t(y))),
    ]:
        y_pred, y_true = _case(name, rs)
        assert losses.get(name)(y_true, y_pred) == pytest.approx(float(ref(y_pred, y_true)), rel=1e-12), name


# ----------------------------------------------------------------------------- fused pairs
FUSED = [("softmax", "categorical_crossentropy"), ("softmax", "sparse_categorical_crossentropy"),
         ("sigmoid", "binary_crossentropy")]


def _targets(loss, rs, B, d):
    if loss == "sparse_categorical_crossentropy":
        return rs.integers(0, d, size=B)
    if loss == "categorical_crossentropy":
        return np.eye(d)[rs.integers(0, d, size=B)]
    return rs.uniform(0, 1, size=(B, d))


def _compiled(sizes, acts, loss, dtype="float64", seed=0):
    model = mlp(sizes, acts, dtype=dtype, seed=seed)
    model.compile("sgd", loss)
    model.prepare(np.zeros((1, sizes[0])))      # resolves loss fusion, as fit/evaluate do
    return model


@pytest.mark.parametrize("act,loss", FUSED)
@pytest.mark.parametrize("seed", SEEDS)
def test_fused_pairs_gradient_matches_finite_differences(act, loss, seed):
    rs = np.random.default_rng(seed)
    n_in, hidden, d, B = (int(v) for v in rs.integers(2, 6, size=4))
    model = _compiled([n_in, hidden, d], ["tanh", act], loss, seed=seed)
    assert model._fused, f"{act} + {loss} should be computed fused"
    x = rs.normal(size=(B, n_in))
    y = model.check_targets(_targets(loss, rs, B, d), B)
    value, _ = model.compute_gradients(x, y)
    analytic = model.grads.copy()
    num = numerical_grad(lambda: model.compute_gradients(x, y)[0], model.params)
    assert rel_error(analytic, num) < 1e-6
    # the fused value is the plain loss of the network output (independent computation)
    p = model.predict(x)
    if act == "softmax":
        labels = y if y.ndim == 1 else y.argmax(1)
        expected = -np.log(p[np.arange(B), labels]).mean()
    else:
        expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    assert value == pytest.approx(expected, rel=1e-10)


def test_fused_gradient_equals_unfused_gradient():
    """Fusion is an optimisation: away from clipping the gradient is that of the plain pair."""
    rs = np.random.default_rng(0)
    x = rs.normal(size=(7, 4))
    labels = rs.integers(0, 3, size=7)
    fused = _compiled([4, 5, 3], ["relu", "softmax"], "sparse_categorical_crossentropy")
    plain = _compiled([4, 5, 3], ["relu", "softmax"], "sparse_categorical_crossentropy")
    plain._fused = False
    plain.layers[-1].keep_logits = False
    vf, _ = fused.compute_gradients(x, labels)
    vp, _ = plain.compute_gradients(x, labels)
    assert vf == pytest.approx(vp, rel=1e-12)
    np.testing.assert_allclose(fused.grads, plain.grads, rtol=1e-9, atol=1e-14)


def test_activation_layer_output_is_fused_too():
    model = Sequential([Input(shape=(3,)), Dense(4), gradfit.Activation("softmax")], dtype="float64")
    model.compile("sgd", "categorical_crossentropy")
    model.prepare(np.zeros((1, 3)))
    assert model._fused
    rs = np.random.default_rng(1)
    x, y = rs.normal(size=(5, 3)), np.eye(4)[rs.integers(0, 4, 5)]
    model.compute_gradients(x, y)
    analytic = model.grads.copy()
    num = numerical_grad(lambda: model.compute_gradients(x, y)[0], model.params)
    assert rel_error(analytic, num) < 1e-6


def _logit_model(loss, act, kernel, dtype):
    """One Dense layer without hidden layers, kernel set by hand so that x = e_0 gives logits
    equal to kernel[0]."""
    n_out = kernel.shape[1]
    model = Sequential([Input(shape=(kernel.shape[0],)), Dense(n_out, activation=act)], dtype=dtype)
    model.compile("sgd", loss)
    model.set_weights([kernel, np.zeros(n_out)])
    model.prepare(np.zeros((1, kernel.shape[0])))
    assert model._fused
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_softmax_crossentropy_is_stable_at_huge_logits(dtype):
    kernel = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    x = np.array([[1.0, 0.0]], dtype=dtype)
    for loss, y in [("sparse_categorical_crossentropy", np.array([2])),
                    ("categorical_crossentropy", np.array([[0.0, 0.0, 1.0]], dtype=dtype))]:
        model = _logit_model(loss, "softmax", kernel, dtype)
        value, _ = model.compute_gradients(x, y)
        # logits z = (1e4, 0, -1e4), label 2: l = logsumexp(z) - z_2 = 2e4 (+ e^-1e4 terms)
        assert np.isfinite(value) and value == pytest.approx(2e4, rel=1e-7)
        g = model.layers[0].kernel_grad
        assert np.isfinite(model.grads).all()
        # dL/dz = softmax(z) - onehot = (1, 0, -1); dL/dW = x^T dL/dz
        np.testing.assert_allclose(g, [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]], atol=1e-6)
        np.testing.assert_allclose(model.layers[0].bias_grad, [1.0, 0.0, -1.0], atol=1e-6)
        ev = model.evaluate(x, y)
        assert ev == pytest.approx(2e4, rel=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_sigmoid_bce_is_stable_at_huge_logits(dtype):
    kernel = np.array([[1e4, -1e4], [0.0, 0.0]])
    model = _logit_model("binary_crossentropy", "sigmoid", kernel, dtype)
    x = np.array([[1.0, 0.0]], dtype=dtype)
    y = np.array([[0.0, 1.0]], dtype=dtype)        # both outputs maximally wrong
    value, _ = model.compute_gradients(x, y)
    # l = mean_j softplus(+-1e4) = 1e4; dL/dz = (sigmoid(z) - y) / 2 = (0.5, -0.5)
    assert np.isfinite(value) and value == pytest.approx(1e4, rel=1e-7)
    np.testing.assert_allclose(model.layers[0].bias_grad, [0.5, -0.5], atol=1e-7)
    y_right = np.array([[1.0, 0.0]], dtype=dtype)  # maximally right: loss and gradient ~ 0
    value, _ = model.compute_gradients(x, y_right)
    assert value == pytest.approx(0.0, abs=1e-12)
    assert np.abs(model.grads).max() < 1e-12


def test_unfused_crossentropy_clips_like_keras():
    """Without fusion (softmax output with mse metrics etc.), probabilities are clipped to 1e-7."""
    loss = losses.get("categorical_crossentropy")
    v = loss(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert v == pytest.approx(-np.log(1e-7), rel=1e-9)
    bce = losses.get("binary_crossentropy")
    assert bce(np.array([[1.0]]), np.array([[0.0]])) == pytest.approx(-np.log(1e-7), rel=1e-6)


# ----------------------------------------------------------------------------- names and targets
def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="'crossentropy'") as e:
        losses.get("crossentropy")
    for name in LOSS_NAMES:
        assert name in str(e.value)
    model = mlp([2, 2], ["softmax"])
    with pytest.raises(ValueError, match="'hinge'"):
        model.compile("sgd", "hinge")
    assert model.loss is None, "a failed compile leaves the model uncompiled"


def test_compile_without_loss_names_the_choices():
    with pytest.raises(ValueError, match="mse"):
        mlp([2, 1], ["linear"]).compile("sgd")


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0.5, 1]])
def test_sparse_labels_out_of_range_or_not_integer(labels):
    loss = losses.get("sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="label"):
        loss.check_targets(np.array(labels), 3)


def test_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(4, 2\).*width 3"):
        losses.get("mse").check_targets(np.zeros((4, 2)), 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.get("binary_crossentropy").check_targets(np.array([0.0, 2.0]), 1)


# ----------------------------------------------------------------------------- metrics
def test_accuracy_resolves_like_keras():
    for loss, out, cls in [("binary_crossentropy", 1, metrics.BinaryAccuracy),
                           ("mse", 1, metrics.BinaryAccuracy),
                           ("sparse_categorical_crossentropy", 4, metrics.SparseCategoricalAccuracy),
                           ("categorical_crossentropy", 4, metrics.CategoricalAccuracy)]:
        name, m = metrics.get("accuracy", losses.get(loss), out)
        assert name == "accuracy" and isinstance(m, cls), (loss, out)
    with pytest.raises(ValueError, match="accuracy.*got 'accuracyy'"):
        metrics.get("accuracyy", losses.get("mse"), 1)


def test_metric_batch_sums():
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    assert metrics.SparseCategoricalAccuracy().batch_sum(p, np.array([1, 1, 2])) == 2
    assert metrics.CategoricalAccuracy().batch_sum(p, np.eye(3)[[1, 0, 0]]) == 2
    assert metrics.BinaryAccuracy().batch_sum(np.array([[0.7], [0.4], [0.6]]),
                                              np.array([[1.0], [1.0], [0.0]])) == 1
    y = np.array([[1.0, 2.0], [0.0, 0.0]])
    yh = np.array([[2.0, 2.0], [0.0, 4.0]])
    assert metrics.MeanSquaredError().batch_sum(yh, y) == pytest.approx(0.5 + 8.0)
    assert metrics.MeanAbsoluteError().batch_sum(yh, y) == pytest.approx(0.5 + 2.0)
