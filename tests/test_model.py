"""Sequential: the lecture's network (summary, 2,555,501 parameters), Input vs input_shape,
get/set_weights, a whole-network finite-difference check of compute_gradients, predict, and bad
input rejected before any state changes."""
from __future__ import annotations

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Dropout, Input, Sequential

from conftest import mlp, numerical_grad, rel_error


def lecture_network(**first):
    """The lecture's 100-500-1000-2000-1 network."""
    gradfit.set_random_seed(0)
    head = [Input(shape=(100,))] if not first else []
    model = Sequential(head + [Dense(500, activation="relu", **first), Dense(1000, activation="relu"),
                               Dense(2000, activation="relu"), Dense(1)])
    model.build()    # weights are drawn at build time, from the generator seeded above
    return model


def test_lecture_network_count_params_and_summary():
    model = lecture_network()
    assert model.count_params() == 2_555_501
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 2,555,501" in text
    for shape, count in [("(None, 500)", "50,500"), ("(None, 1000)", "501,000"),
                         ("(None, 2000)", "2,002,000"), ("(None, 1)", "2,001")]:
        row = next(l for l in lines if shape in l)
        assert row.rstrip().endswith(count), row
    assert len([l for l in lines if "(Dense)" in l]) == 4
    assert model.params.size == 2_555_501 and model.grads.size == 2_555_501


def test_summary_prints_through_print_by_default(capsys):
    mlp([3, 2], ["relu"]).summary()
    assert "Total params: 8" in capsys.readouterr().out


def test_input_and_input_shape_give_the_same_model():
    a = lecture_network()
    b = lecture_network(input_shape=(100,))
    assert a.input_dim == b.input_dim == 100
    assert a.count_params() == b.count_params()
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]
    np.testing.assert_array_equal(a.params, b.params)   # same seed, same draws
    la, lb = [], []
    a.summary(print_fn=la.append)
    b.summary(print_fn=lb.append)
    rows = lambda ls: [l.split("(Dense)")[1].split() for l in ls if "(Dense)" in l]  # names differ
    assert rows(la) == rows(lb) and len(rows(la)) == 4
    assert la[-1] == lb[-1]


def test_model_without_input_width_says_how_to_declare_it():
    with pytest.raises(ValueError, match="Input"):
        Sequential([Dense(3)]).count_params()
    model = Sequential([Dense(3)])
    model.build((None, 7))
    assert model.count_params() == 7 * 3 + 3


def test_input_must_come_first():
    with pytest.raises(ValueError, match="first"):
        Sequential([Dense(3, input_shape=(2,)), Input(shape=(3,))])


def test_get_set_weights_round_trip():
    model = mlp([4, 3, 2], ["relu", "softmax"])
    ws = model.get_weights()
    assert [w.shape for w in ws] == [(4, 3), (3,), (3, 2), (2,)]
    rs = np.random.default_rng(0)
    new = [rs.normal(size=w.shape) for w in ws]
    model.set_weights(new)
    back = model.get_weights()
    for a, b in zip(new, back):
        np.testing.assert_array_equal(a.astype(np.float32), b)
    # get_weights returns copies: mutating them leaves the model alone
    back[0][...] = 0
    assert model.layers[0].kernel.any()
    # set_weights writes into the SAME buffer (the views stay valid)
    assert np.shares_memory(model.layers[0].kernel, model.params)
    np.testing.assert_array_equal(model.layers[1].bias, new[3].astype(np.float32))


def test_set_weights_rejects_bad_lists_without_changing_anything():
    model = mlp([4, 3, 2], ["relu", "softmax"])
    before = model.params.copy()
    ws = model.get_weights()
    with pytest.raises(ValueError, match="got 3 arrays.*has 4"):
        model.set_weights(ws[:3])
    bad = [w + 1 for w in ws]
    bad[3] = np.zeros(5)                       # the last one is wrong: nothing may be written
    with pytest.raises(ValueError, match=r"weight 3 .*\(5,\).*\(2,\)"):
        model.set_weights(bad)
    bad[3] = np.array([0.0, np.nan])
    with pytest.raises(ValueError, match="NaN"):
        model.set_weights(bad)
    np.testing.assert_array_equal(model.params, before)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("loss,acts,seed", [
    ("mse", ["relu", "tanh", "linear"], 0),
    ("mse", ["sigmoid", "leaky_relu", "tanh"], 1),
    ("sparse_categorical_crossentropy", ["tanh", "relu", "softmax"], 2),
    ("binary_crossentropy", ["tanh", "tanh", "sigmoid"], 3),
])
def test_whole_network_gradient_matches_finite_differences(loss, acts, seed):
    rs = np.random.default_rng(seed)
    n_in, h1, h2, d, B = 4, 6, 5, (3 if "sparse" in loss else 2), 8
    model = mlp([n_in, h1, h2, d], acts, dtype="float64", seed=seed)
    for layer in model.layers:                 # non-zero biases, so their gradients matter
        layer.bias[...] = rs.normal(scale=0.3, size=layer.bias.shape)
    model.compile("sgd", loss)
    model.prepare(np.zeros((1, n_in)))
    x = rs.normal(size=(B, n_in))
    if "sparse" in loss:
        y = rs.integers(0, d, size=B)
    elif "binary" in loss:
        y = rs.integers(0, 2, size=(B, d)).astype(float)
    else:
        y = rs.normal(size=(B, d))
    value, y_pred = model.compute_gradients(x, y)
    analytic = model.grads.copy()
    assert np.abs(analytic).min() >= 0 and np.abs(analytic).max() > 0
    num = numerical_grad(lambda: model.compute_gradients(x, y)[0], model.params)
    assert rel_error(analytic, num) < 1e-6
    # every layer's slice is checked, not only the total
    for e in model.flat.entries:
        assert rel_error(analytic[e.start:e.stop], num[e.start:e.stop]) < 1e-5, e
    # the returned value is the batch-mean loss of the returned prediction
    assert value == pytest.approx(model.loss(y, model.predict(x)), rel=1e-10)


def test_compute_gradients_denom():
    rs = np.random.default_rng(0)
    model = mlp([3, 4, 2], ["tanh", "linear"], dtype="float64")
    model.compile("sgd", "mse")
    model.prepare(np.zeros((1, 3)))
    x, y = rs.normal(size=(6, 3)), rs.normal(size=(6, 2))
    v6, _ = model.compute_gradients(x, y)
    g6 = model.grads.copy()
    va, _ = model.compute_gradients(x[:2], y[:2], denom=6)
    ga = model.grads.copy()
    vb, _ = model.compute_gradients(x[2:], y[2:], denom=6)
    assert va + vb == pytest.approx(v6, rel=1e-12)
    np.testing.assert_allclose(ga + model.grads, g6, rtol=1e-10, atol=1e-15)


def test_layer_io_gives_input_and_preactivation_gradient():
    rs = np.random.default_rng(0)
    model = mlp([3, 4, 2], ["tanh", "linear"], dtype="float64")
    model.compile("sgd", "mse")
    model.prepare(np.zeros((1, 3)))
    x, y = rs.normal(size=(5, 3)), rs.normal(size=(5, 2))
    model.compute_gradients(x, y)
    io = model.layer_io()
    assert len(io) == 2
    for layer, (xin, dz) in zip(model.layers, io):
        np.testing.assert_allclose(xin.T @ dz, layer.kernel_grad, rtol=1e-12)
        np.testing.assert_allclose(dz.sum(0), layer.bias_grad, rtol=1e-12)


# ----------------------------------------------------------------------------- predict
def _numpy_forward(model, x):
    acts = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z,
            "softmax": lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)}
    for layer in model.layers:
        if isinstance(layer, Dense):
            x = acts[layer.activation.name](x @ layer.kernel + layer.bias)
    return x


def test_predict_in_batches_equals_one_big_forward():
    rs = np.random.default_rng(0)
    model = mlp([5, 7, 3], ["relu", "softmax"], dtype="float64")
    x = rs.normal(size=(53, 5))
    whole = model.predict(x, batch_size=len(x))
    for bs in (1, 8, 10, 52):
        np.testing.assert_allclose(model.predict(x, batch_size=bs), whole, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(whole, _numpy_forward(model, x), rtol=1e-12)
    # the result is a fresh array, not a layer buffer that the next call overwrites
    first = model.predict(x[:4])
    model.predict(x[4:8])
    np.testing.assert_allclose(first, whole[:4], rtol=1e-13)


def test_dropout_is_off_in_predict():
    gradfit.set_random_seed(0)
    with_drop = Sequential([Input(shape=(4,)), Dense(6, activation="relu"), Dropout(0.5), Dense(2)])
    without = Sequential([Input(shape=(4,)), Dense(6, activation="relu"), Dense(2)])
    without.build()
    with_drop.build()
    without.set_weights(with_drop.get_weights())
    x = np.random.default_rng(0).normal(size=(9, 4))
    np.testing.assert_array_equal(with_drop.predict(x), without.predict(x))


# ----------------------------------------------------------------------------- bad input
def _compiled_model():
    model = mlp([4, 5, 3], ["relu", "softmax"])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


BAD_X = {
    "wrong width": (np.zeros((6, 5)), r"5 features.*expects 4"),
    "wrong rank 1-D": (np.zeros(4), r"shape \(n, features\).*\(4,\)"),
    "wrong rank 3-D": (np.zeros((6, 2, 2)), r"\(6, 2, 2\)"),
    # a batch call names the index; the per-batch reads of fit/evaluate/predict the row
    "NaN": (np.where(np.eye(6, 4) == 1, np.nan, 0.0),
            r"NaN.*index \(0, 0\)|data row 0, column 0: x is nan \(4 NaN"),
    "inf": (np.full((6, 4), np.inf), r"NaN or inf"),
    "strings": (np.full((6, 4), "a"), "numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_X))
@pytest.mark.parametrize("method", ["predict", "evaluate", "train_on_batch", "fit"])
def test_bad_inputs_raise_before_any_state_changes(case, method):
    model = _compiled_model()
    x, match = BAD_X[case]
    y = np.zeros(len(x), dtype=int)
    before = model.params.copy()
    with pytest.raises(ValueError, match=match):
        if method == "fit":
            model.fit(x, y, batch_size=2, epochs=1, verbose=0)
        elif method == "predict":
            model.predict(x)
        else:
            getattr(model, method)(x, y)
    np.testing.assert_array_equal(model.params, before)
    assert model.train_state.opt is None, "no optimizer state is created by a rejected call"


@pytest.mark.parametrize("method", ["evaluate", "train_on_batch", "fit"])
def test_labels_out_of_range_and_length_mismatch(method):
    model = _compiled_model()
    before = model.params.copy()
    x = np.zeros((6, 4))
    call = {"evaluate": lambda y: model.evaluate(x, y),
            "train_on_batch": lambda y: model.train_on_batch(x, y),
            "fit": lambda y: model.fit(x, y, batch_size=2, verbose=0)}[method]
    # a batch call states the range found; fit and evaluate read per batch and name the row
    with pytest.raises(ValueError, match=r"labels out of range.*\[0, 3\].*\[0, 2\]|"
                                         r"data row 3: label 3 is out of range; class labels "
                                         r"must be 0..2"):
        call(np.array([0, 1, 2, 3, 0, 1]))
    with pytest.raises(ValueError, match="different lengths: 6 and 5"):
        call(np.zeros(5, dtype=int))
    np.testing.assert_array_equal(model.params, before)
    assert model.train_state.opt is None


def test_unbuilt_model_is_not_built_by_a_rejected_input():
    model = Sequential([Dense(3)])
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.zeros(5))
    assert not model.built, "a rejected input must not fix the input width"


def test_predict_and_evaluate_batch_size_validated():
    model = _compiled_model()
    x, y = np.zeros((6, 4)), np.zeros(6, dtype=int)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        model.evaluate(x, y, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        model.evaluate(np.zeros((0, 4)), np.zeros(0, dtype=int))


def test_uncompiled_model_says_compile_first():
    model = mlp([4, 2], ["softmax"])
    with pytest.raises(RuntimeError, match="compile"):
        model.evaluate(np.zeros((2, 4)), np.zeros(2, dtype=int))


def test_train_on_batch_refuses_an_empty_batch():
    model = Sequential([Input(shape=(3,)), Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="x must be a batch of at least one example"):
        model.train_on_batch(np.zeros((0, 3)), np.zeros(0, dtype=int))
