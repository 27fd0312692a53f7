"""gradfit.curvature: exact Hessian-vector products (R-operator) against central differences of
gradients for every layer type and loss at random shapes (float64); the exact Hessian and the
per-example Jacobian against torch.autograd run in the test; the Gauss-Newton matrix against
J^T H J from brute-force per-example Jacobians; the memory guard refusing before allocating."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import gradfit
from gradfit import Activation, Dense, Dropout, Flatten, Input, Sequential, regularizers
from gradfit.curvature import (ENV_VAR, HessianVectorProducts, InsufficientMemoryError, Network,
                               available_bytes, check_memory, gauss_newton_matrix,
                               gauss_newton_vector_product, hessian_matrix,
                               hessian_vector_product, jacobian, residual_products)
from gradfit.curvature.jacobian import examples_per_block

from conftest import rel_error

ACTS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
# (loss, last activation): fused pairs, from_logits, and losses on probabilities
HEADS = [("mse", "linear"), ("mse", "tanh"), ("mae", "linear"),
         ("binary_crossentropy", "sigmoid"), ("binary_crossentropy", "softmax"),
         ({"name": "binary_crossentropy", "from_logits": True}, "linear"),
         ("categorical_crossentropy", "softmax"), ("categorical_crossentropy", "sigmoid"),
         ({"name": "categorical_crossentropy", "from_logits": True}, "linear"),
         ("sparse_categorical_crossentropy", "softmax"),
         ("sparse_categorical_crossentropy", "sigmoid"),
         ({"name": "sparse_categorical_crossentropy", "from_logits": True}, "linear")]


def _targets(loss, rs, n, d):
    name = loss if isinstance(loss, str) else loss["name"]
    if name in ("mse", "mae"):
        return rs.normal(size=(n, d))
    if name == "binary_crossentropy":
        return rs.uniform(0, 1, size=(n, d))
    labels = rs.integers(0, d, size=n)
    return labels if name.startswith("sparse") else np.eye(d)[labels]


def _model(layers, seed, rs):
    gradfit.set_random_seed(seed)
    model = Sequential(layers, dtype="float64")
    model.build()
    # non-zero biases: probes away from symmetric points and the ReLU kink
    for e in model.flat.entries:
        if e.name == "bias":
            model.params[e.start:e.stop] = rs.uniform(0.1, 0.5, size=e.stop - e.start)
    return model


def _training_gradient(model, x, y, dropout_seed=None):
    """The gradient the training step uses (compute_gradients + penalties): the reference."""
    if dropout_seed is not None:
        gradfit.set_random_seed(dropout_seed)
    model.compute_gradients(x, y)
    if model.regularized:
        model.regularization(add_gradients=True)
    return model.grads.copy()


def _fd_hvp(model, x, y, v, eps=1e-5, dropout_seed=None):
    """(g(w + eps v) - g(w - eps v)) / (2 eps): central differences of training gradients."""
    w = model.params.copy()
    model.params[...] = w + eps * v
    gp = _training_gradient(model, x, y, dropout_seed)
    model.params[...] = w - eps * v
    gm = _training_gradient(model, x, y, dropout_seed)
    model.params[...] = w
    return (gp - gm) / (2 * eps)


@pytest.mark.parametrize("hidden", ACTS)
@pytest.mark.parametrize("loss,last", HEADS)
def test_hvp_equals_finite_differences_of_gradients(hidden, loss, last):
    rs = np.random.default_rng(abs(hash((hidden, str(loss), last))) % 2**32)
    n_in, h, d, B = (int(v) for v in rs.integers(2, 5, size=4))
    model = _model([Input(shape=(n_in,)), Dense(h, activation=hidden),
                    Dense(d, activation=last)], 0, rs)
    model.compile(optimizer="sgd", loss=loss)
    x = rs.normal(size=(B, n_in))
    y = model.check_targets(_targets(loss, rs, B, d), B)
    v = rs.normal(size=model.count_params())
    net = Network(model, model.loss)
    hv = hessian_vector_product(net, x, y, v)
    fd = _fd_hvp(model, x, y, v)
    if np.linalg.norm(fd) < 1e-8:   # mae, or a network flat here: both must be ~0
        assert np.linalg.norm(hv) < 1e-6
    else:
        assert rel_error(hv, fd) < 1e-6


def test_hvp_through_every_layer_type_with_penalties():
    """Flatten after Input(shape=(2, 3)), Activation layers (the last one fused with the loss),
    Dense without bias, Dropout in inference mode, L1L2 and L2 penalties on kernel and bias."""
    rs = np.random.default_rng(7)
    model = _model([Input(shape=(2, 3)), Flatten(),
                    Dense(5, use_bias=False, kernel_regularizer=regularizers.L1L2(0.01, 0.02)),
                    Activation("tanh"), Dropout(0.3),
                    Dense(4, activation="sigmoid", bias_regularizer=regularizers.L2(0.05)),
                    Dense(3), Activation("softmax")], 0, rs)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = rs.normal(size=(5, 6))
    y = np.eye(3)[rs.integers(0, 3, size=5)]
    model.layers[3].rate = 0.0   # the reference gradient runs in training mode: no dropout
    v = rs.normal(size=model.count_params())
    net = Network(model, model.loss)
    assert net.fused
    assert rel_error(hessian_vector_product(net, x, y, v), _fd_hvp(model, x, y, v)) < 1e-6


def test_hvp_holds_the_dropout_mask_fixed():
    rs = np.random.default_rng(3)
    model = _model([Input(shape=(4,)), Dense(6, activation="tanh"), Dropout(0.5),
                    Dense(2, activation="sigmoid")], 0, rs)
    model.compile(optimizer="sgd", loss="mse")
    x, y = rs.normal(size=(7, 4)), rs.normal(size=(7, 2))
    v = rs.normal(size=model.count_params())
    net = Network(model, "mse", training=True)
    gradfit.set_random_seed(11)
    products = HessianVectorProducts(net, x, y)
    mask = model.layers[1]._mask.copy()
    assert 0 < np.count_nonzero(mask) < mask.size, "test set-up: the mask drops some units"
    hv, g = products.apply(v), products.gradient()
    assert rel_error(g, _training_gradient(model, x, y, dropout_seed=11)) < 1e-12
    assert rel_error(hv, _fd_hvp(model, x, y, v, dropout_seed=11)) < 1e-6


# ----------------------------------------------------------------------------- torch references
def _torch_outputs(model, x):
    """The model's outputs as a torch function of its flat weights (gradfit's layout:
    kernel (n_in, units) in C order, then bias, per Dense layer)."""
    import torch
    xt = torch.as_tensor(x)
    acts = {"linear": lambda z: z, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
            "relu": torch.relu, "softmax": lambda z: torch.softmax(z, dim=1)}

    def f(w):
        a = xt
        for e_layer, layer in enumerate(model.layers):
            entries = {e.name: e for e in model.flat.entries if e.layer == e_layer}
            k = entries["kernel"]
            z = a @ w[k.start:k.stop].reshape(k.shape)
            if "bias" in entries:
                b = entries["bias"]
                z = z + w[b.start:b.stop]
            a = acts[layer.activation.name](z)
        return a
    return f


def test_exact_hessian_equals_torch_hessian():
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(5)
    model = _model([Input(shape=(3,)), Dense(4, activation="tanh"), Dense(3, activation="softmax")],
                   0, rs)
    x = rs.normal(size=(6, 3))
    labels = rs.integers(0, 3, size=6)
    net = Network(model, "sparse_categorical_crossentropy")
    H = hessian_matrix(net, x, labels)
    f = _torch_outputs(model, x)

    def loss(w):
        return torch.nn.functional.nll_loss(torch.log(f(w)), torch.as_tensor(labels))
    H_ref = torch.autograd.functional.hessian(loss, torch.as_tensor(model.params.copy())).numpy()
    assert np.allclose(H, H.T)
    assert rel_error(H, H_ref) < 1e-10


def test_jacobian_and_residual_products_equal_torch_jacobian():
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(6)
    model = _model([Input(shape=(2,)), Dense(5, activation="tanh"), Dense(2)], 0, rs)
    x, y = rs.normal(size=(9, 2)), rs.normal(size=(9, 2))
    net = Network(model, "mse")
    J_ref = torch.autograd.functional.jacobian(_torch_outputs(model, x),
                                               torch.as_tensor(model.params.copy())).numpy()
    J_ref = J_ref.reshape(9 * 2, -1)          # rows example-major: (i, c)
    # a block of 2 examples: the row blocks must sum to the whole
    block = 2 * 2 * model.count_params() * 8
    assert examples_per_block(model.count_params(), 2, 8, block) == 2
    assert rel_error(jacobian(net, x, block_bytes=block), J_ref) < 1e-12
    jtj, jte, sse = residual_products(net, x, y, block_bytes=block)
    e = (model.predict(x) - y).reshape(-1)
    assert rel_error(jtj, J_ref.T @ J_ref) < 1e-12
    assert rel_error(jte, J_ref.T @ e) < 1e-12
    assert sse == pytest.approx(float(e @ e), rel=1e-12)


@pytest.mark.parametrize("loss,last", [("mse", "tanh"), ("categorical_crossentropy", "softmax"),
                                       ("binary_crossentropy", "sigmoid")])
def test_gauss_newton_matrix_equals_jt_h_j_from_per_example_gradients(loss, last):
    """G = sum_i J_i^T H_i J_i, with J_i from one backward pass per example and output (brute
    force) and H_i the loss's Hessian written out in the test."""
    rs = np.random.default_rng(8)
    d = 3
    model = _model([Input(shape=(3,)), Dense(4, activation="sigmoid"),
                    Dense(d, activation=last)], 0, rs)
    model.compile(optimizer="sgd", loss=loss)
    B = 5
    x = rs.normal(size=(B, 3))
    y = model.check_targets(_targets(loss, rs, B, d), B)
    n = model.count_params()
    net = Network(model, model.loss)
    G_ref = np.zeros((n, n))
    for i in range(B):
        rows = []
        for c in range(d):            # d(head input_c of example i)/dw, one backward each
            net.forward(x[i:i + 1])
            dy = np.zeros((1, d))
            dy[0, c] = 1.0
            net.backward(dy)
            rows.append(model.grads.copy())
        J_i = np.array(rows)
        out = net.forward(x[i:i + 1])[0]
        if loss == "mse":
            H_i = 2 * np.eye(d) / (d * B)
        elif loss == "categorical_crossentropy":   # softmax cross-entropy Hessian in the middle
            H_i = (np.diag(out) - np.outer(out, out)) / B
        else:
            H_i = np.diag(out * (1 - out)) / (d * B)
        G_ref += J_i.T @ H_i @ J_i
    G = gauss_newton_matrix(net, x, y)
    assert rel_error(G, G_ref) < 1e-12
    v = rs.normal(size=n)
    assert rel_error(gauss_newton_vector_product(net, x, y, v), G_ref @ v) < 1e-12


def test_gauss_newton_refuses_losses_without_a_psd_hessian():
    rs = np.random.default_rng(0)
    x = rs.normal(size=(4, 3))
    model = _model([Input(shape=(3,)), Dense(2)], 0, rs)
    with pytest.raises(ValueError, match="'mae' has zero curvature.*mse"):
        gauss_newton_matrix(Network(model, "mae"), x, rs.normal(size=(4, 2)))
    model = _model([Input(shape=(3,)), Dense(2, activation="sigmoid")], 0, rs)
    with pytest.raises(ValueError, match="indefinite.*from_logits=True"):
        gauss_newton_matrix(Network(model, "categorical_crossentropy"), x, np.eye(2)[[0, 1, 0, 1]])


# ----------------------------------------------------------------------------- memory guard
def test_memory_guard_refuses_before_allocating(monkeypatch):
    rs = np.random.default_rng(1)
    model = _model([Input(shape=(30,)), Dense(40, activation="tanh"), Dense(5)], 0, rs)
    n = model.count_params()          # 1,445 weights: one n x n float64 matrix is 16.7 MB
    x, y = rs.normal(size=(50, 30)), rs.normal(size=(50, 5))
    net = Network(model, "mse")
    monkeypatch.setenv(ENV_VAR, "1e6")
    assert available_bytes() == 1_000_000
    for build in (lambda: hessian_matrix(net, x, y), lambda: gauss_newton_matrix(net, x, y),
                  lambda: residual_products(net, x, y)):
        tracemalloc.start()
        try:
            with pytest.raises(InsufficientMemoryError) as err:
                build()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < n * n * 8 / 20, f"allocated {peak} bytes before refusing"
        msg = str(err.value)
        assert "30-40-5 network" in msg and f"{n:,}\u00b2 float64 = 16.7 MB" in msg
        assert "1.0 MB available" in msg and "lbfgs" in msg and "newton_cg" in msg


def test_memory_guard_message_of_the_lecture_network():
    with pytest.raises(InsufficientMemoryError) as err:
        check_memory("lm", 79_510, network="784-100-10", available=21e9)
    assert str(err.value).startswith(
        "lm on this 784-100-10 network needs J\u1d40J of 79,510\u00b2 float64 = 50.6 GB")
    assert "21.0 GB available" in str(err.value)
    assert check_memory("lbfgs", 79_510, available=21e9)["matrix_bytes"] == 2 * 10 * 79_510 * 8


def test_available_bytes_reads_meminfo_or_the_override(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    avail = available_bytes()
    try:
        with open("/proc/meminfo") as f:
            expected = next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemAvailable:"))
        assert abs(avail - expected) < 0.2 * expected    # memory moves between two reads
    except OSError:
        assert avail is None
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(ValueError, match="GRADFIT_MEMORY_AVAILABLE.*'lots'"):
        available_bytes()
