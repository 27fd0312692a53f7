"""fit / evaluate: history, the lecture's EarlyStopping snippet, stopping on NaN, exact
evaluation, and bad arguments rejected before any training work."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Input, Sequential
from gradfit.callbacks import Callback, EarlyStopping, LearningRateScheduler
from gradfit.optimizers import SGD, Adam


def _classification(n=160, seed=0):
    """Noisy 3-class data: a small network overfits it, so the validation loss turns up."""
    rs = np.random.default_rng(seed)
    X = rs.normal(size=(n, 6))
    Y = np.argmax(X @ rs.normal(size=(6, 3)) + rs.normal(scale=2.0, size=(n, 3)), axis=1)
    return X, Y


def _classifier(dtype="float32", optimizer=None, seed=0):
    gradfit.set_random_seed(seed)
    model = Sequential([Input(shape=(6,)), Dense(32, activation="relu"),
                        Dense(3, activation="softmax")], dtype=dtype)
    model.compile(optimizer or Adam(learning_rate=0.01, fused=False),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class WeightsPerEpoch(Callback):
    """Records the weights and logs at the end of every epoch, and the params after every step."""

    def __init__(self):
        super().__init__()
        self.weights, self.logs, self.after_step = [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())
        self.logs.append(dict(logs))

    def on_train_batch_end(self, batch, logs=None):
        self.after_step.append(np.array(self.model.params, copy=True))


def _keras_stop_epoch(values, patience, epochs):
    """Epochs Keras 3's EarlyStopping(min_delta=0, mode='min') lets run, and the best epoch."""
    best, best_epoch, wait = np.inf, 0, 0
    for e, v in enumerate(values):
        wait += 1
        if v < best:
            best, best_epoch, wait = v, e, 0
        elif wait >= patience and e > 0:
            return e + 1, best_epoch
    return epochs, best_epoch


# ----------------------------------------------------------------------------- the lecture's snippet
def test_lecture_snippet_runs_as_written(capsys):
    X, Y = _classification()
    Xtrain, Ytrain, Xval, Yval = X[:120], Y[:120], X[120:], Y[120:]
    model = _classifier(optimizer=Adam(learning_rate=0.01))     # the default (fused) Adam
    model.fit(Xtrain, Ytrain, epochs=100, validation_data=(Xval, Yval),
              callbacks=[EarlyStopping(patience=10, restore_best_weights=True)])
    out = capsys.readouterr().out
    history = model.history.history      # fit sets model.history, as Keras
    epoch_lines = re.findall(r"Epoch (\d+)/100", out)
    assert epoch_lines, "the default verbosity shows progress"
    ran = int(epoch_lines[-1])
    assert len(history["val_loss"]) == ran
    assert (ran, int(np.argmin(history["val_loss"]))) == _keras_stop_epoch(history["val_loss"], 10, 100)
    assert ran < 100, "this data is noisy enough that the validation loss turns up"


@pytest.mark.parametrize("epochs", [100, 8])
def test_early_stopping_restores_the_best_epochs_weights(epochs):
    """epochs=100 stops early; epochs=8 ends before patience runs out and still restores (Keras 3)."""
    X, Y = _classification()
    model = _classifier()
    rec = WeightsPerEpoch()
    history = model.fit(X[:120], Y[:120], epochs=epochs, validation_data=(X[120:], Y[120:]),
                        callbacks=[EarlyStopping(patience=10, restore_best_weights=True), rec],
                        verbose=0)
    val = history.history["val_loss"]
    expected_len, best = _keras_stop_epoch(val, patience=10, epochs=epochs)
    assert len(val) == expected_len == len(rec.weights)
    assert best == int(np.argmin(val))
    assert best < len(val) - 1, "test set-up: the best epoch is not the last one"
    for w, w_best in zip(model.get_weights(), rec.weights[best]):
        np.testing.assert_array_equal(w, w_best)
    assert not np.array_equal(model.params, rec.after_step[-1]), "weights were restored"
    if epochs == 100:
        assert len(val) < 100


def test_history_keys_and_lengths():
    X, Y = _classification()
    model = _classifier()
    h = model.fit(X, Y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert all(len(v) == 3 for v in h.history.values())
    assert h.history["learning_rate"] == [0.01] * 3
    assert all(0 <= a <= 1 for a in h.history["accuracy"] + h.history["val_accuracy"])

    rs = np.random.default_rng(0)
    reg = Sequential([Input(shape=(4,)), Dense(5, activation="tanh"), Dense(2)])
    reg.compile(SGD(learning_rate=0.05, fused=False), "mse", metrics=["mae", "mse"])
    x, y = rs.normal(size=(50, 4)), rs.normal(size=(50, 2))
    h = reg.fit(x, y, epochs=2, batch_size=10, validation_data=(x[:10], y[:10]), verbose=0)
    assert set(h.history) == {"loss", "mae", "mse", "val_loss", "val_mae", "val_mse", "learning_rate"}


def test_epoch_logs_are_exact_averages_over_the_data():
    """With lr = 0 the weights do not move, so the epoch's training loss and metrics (every
    example seen once with drop_remainder=False) and the validation ones equal `evaluate`."""
    X, Y = _classification(103)
    model = _classifier(dtype="float64", optimizer=SGD(learning_rate=0.0, fused=False))
    h = model.fit(X, Y, epochs=1, batch_size=10, drop_remainder=False, validation_split=0.3,
                  verbose=0)
    cut = int(103 * 0.7)    # validation_split takes the LAST 30%, as Keras
    loss, acc = model.evaluate(X[:cut], Y[:cut], batch_size=7)
    assert h.history["loss"][0] == pytest.approx(loss, rel=1e-12)
    assert h.history["accuracy"][0] == pytest.approx(acc, rel=1e-12)
    vloss, vacc = model.evaluate(X[cut:], Y[cut:])
    assert h.history["val_loss"][0] == pytest.approx(vloss, rel=1e-12)
    assert h.history["val_accuracy"][0] == pytest.approx(vacc, rel=1e-12)


# ----------------------------------------------------------------------------- evaluate, predict
def _numpy_probs(model, x):
    h = np.maximum(x @ model.layers[0].kernel + model.layers[0].bias, 0)
    z = h @ model.layers[1].kernel + model.layers[1].bias
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-6)])
def test_evaluate_is_the_exact_mean_over_all_examples(dtype, tol):
    X, Y = _classification(103)
    model = _classifier(dtype=dtype)
    model.fit(X, Y, epochs=2, verbose=0)
    p = _numpy_probs(model, X.astype(np.float64))
    expected_loss = -np.log(p[np.arange(103), Y]).mean()
    expected_acc = (p.argmax(1) == Y).mean()
    for bs in (10, 32, 103, 1):          # 10 and 32 do not divide 103
        loss, acc = model.evaluate(X, Y, batch_size=bs)
        assert loss == pytest.approx(expected_loss, rel=tol)
        assert acc == pytest.approx(expected_acc, abs=1e-12)
    d = model.evaluate(X, Y, return_dict=True)
    assert set(d) == {"loss", "accuracy"} and d["loss"] == pytest.approx(expected_loss, rel=tol)


def test_evaluate_mse_without_metrics_returns_a_float():
    rs = np.random.default_rng(0)
    model = Sequential([Input(shape=(3,)), Dense(2)], dtype="float64")
    model.compile("sgd", "mse")
    x, y = rs.normal(size=(37, 3)), rs.normal(size=(37, 2))
    value = model.evaluate(x, y, batch_size=8)
    assert isinstance(value, float)
    pred = x @ model.layers[0].kernel + model.layers[0].bias
    assert value == pytest.approx(((pred - y) ** 2).mean(), rel=1e-12)


def test_predict_in_batches_equals_one_forward():
    X, Y = _classification(103)
    model = _classifier(dtype="float64")
    model.fit(X, Y, epochs=1, verbose=0)
    whole = model.predict(X, batch_size=103)
    np.testing.assert_allclose(model.predict(X, batch_size=10), whole, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(whole, _numpy_probs(model, X), rtol=1e-12)


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_training():
    X, Y = _classification(64)
    runs = []
    for _ in range(2):
        model = _classifier(seed=5)
        h = model.fit(X, Y, epochs=3, batch_size=8, verbose=0)
        runs.append((model.params.copy(), h.history["loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_progress_states_the_batching_choice(capsys):
    X, Y = _classification(103)
    _classifier().fit(X, Y, epochs=1, batch_size=10, verbose=2)
    out = capsys.readouterr().out
    assert "10 batches of 10" in out and "3 examples sit each epoch out" in out
    _classifier().fit(X, Y, epochs=1, batch_size=10, verbose=2, drop_remainder=False)
    assert "11 batches of 10" in capsys.readouterr().out


# ----------------------------------------------------------------------------- NaN
def _regression(n=64):
    rs = np.random.default_rng(0)
    return rs.normal(size=(n, 5)), rs.normal(size=(n, 1))


def test_nan_loss_stops_training_naming_epoch_and_step(capsys):
    x, y = _regression()
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(5,)), Dense(8, activation="relu"), Dense(1)])
    model.compile(SGD(learning_rate=1e10, fused=False), "mse")
    rec = WeightsPerEpoch()
    with pytest.warns(RuntimeWarning, match=r"epoch 1, step \d+") as w:
        model.fit(x, y, batch_size=8, epochs=5, callbacks=[rec], verbose=0)
    step = int(re.search(r"step (\d+)", str(w[0].message)).group(1))
    assert 2 <= step <= 8
    assert len(rec.after_step) == step - 1, "training stopped at the failing step"
    assert np.isfinite(model.params).all()
    np.testing.assert_array_equal(model.params, rec.after_step[-1])   # the bad update is not applied
    assert "step" in capsys.readouterr().out


def test_nan_in_a_later_epoch_still_restores_the_best_weights():
    x, y = _regression()
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(5,)), Dense(8, activation="relu"), Dense(1)])
    model.compile(SGD(learning_rate=0.01, fused=False), "mse")
    rec = WeightsPerEpoch()
    blow_up = LearningRateScheduler(lambda epoch, lr: 0.01 if epoch < 3 else 1e10)
    with pytest.warns(RuntimeWarning, match=r"epoch 4, step \d+"):
        h = model.fit(x, y, batch_size=8, epochs=10, verbose=0,
                      callbacks=[blow_up, EarlyStopping(monitor="loss", patience=5,
                                                        restore_best_weights=True), rec])
    assert len(h.history["loss"]) == 3
    best = int(np.argmin(h.history["loss"]))
    for a, b in zip(model.get_weights(), rec.weights[best]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")  # on purpose
def test_overflowing_update_is_named_at_the_next_step():
    # An update that overflows (finite loss and gradient) is caught by the next step's loss;
    # the message says the weights themselves are gone (the loop does not scan them per step).
    x, y = _regression()
    y = y * 100
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(5,)), Dense(8, activation="relu"), Dense(1)])
    model.compile(SGD(learning_rate=1e37, fused=False), "mse")
    with pytest.warns(RuntimeWarning, match="weights themselves are no longer finite"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)


# ----------------------------------------------------------------------------- bad arguments
BAD_FIT = {
    "batch 0": (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    "batch -4": (dict(batch_size=-4), "got -4"),
    "batch > n": (dict(batch_size=41), "batch_size must be at most the 40 training examples, got 41"),
    "empty val": (dict(validation_data=(np.zeros((0, 6)), np.zeros(0, dtype=int))), "empty"),
    "val width": (dict(validation_data=(np.zeros((5, 7)), np.zeros(5, dtype=int))), "7 features"),
    "val labels": (dict(validation_data=(np.zeros((5, 6)), np.full(5, 3))),
                   "validation data row 0: label 3 is out of range; class labels must be 0..2"),
    "val lengths": (dict(validation_data=(np.zeros((5, 6)), np.zeros(4, dtype=int))), "5 and 4"),
    "val NaN": (dict(validation_data=(np.full((5, 6), np.nan), np.zeros(5, dtype=int))), "NaN"),
    "split 1": (dict(validation_split=1.0), r"\[0, 1\)"),
    "split 0.99": (dict(validation_split=0.99), "empty training set of 40"),
    "epochs": (dict(epochs=-1), "epochs must be an integer >= 0, got -1"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIT))
def test_bad_fit_arguments_raise_before_training(case):
    X, Y = _classification(40)
    model = _classifier()
    model.build()
    before = model.params.copy()
    kwargs, match = BAD_FIT[case]
    with pytest.raises(ValueError, match=match):
        model.fit(X, Y, **{"epochs": 1, "verbose": 0, **kwargs})
    np.testing.assert_array_equal(model.params, before)
    assert model.train_state.opt is None


def test_bad_data_for_fit():
    X, Y = _classification(40)
    model = _classifier()
    model.build()
    before = model.params.copy()
    with pytest.raises(ValueError, match="different lengths: 40 and 39"):
        model.fit(X, Y[:39], verbose=0)
    first = int(np.flatnonzero(Y == 0)[0])
    with pytest.raises(ValueError, match=rf"before training: data row {first}: label 5 is out "
                                         r"of range; class labels must be 0..2"):
        model.fit(X, np.where(Y == 0, 5, Y), verbose=0)
    bad = X.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"before training: data row 17, column 2: x is nan"):
        model.fit(bad, Y, verbose=0)
    np.testing.assert_array_equal(model.params, before)
