"""Second-order methods through ``compile`` / ``fit`` / ``train_on_batch``: one epoch is one
full-batch iteration of the method's own rule, History and EarlyStopping see it, a backup
resumes it bit for bit, a saved model keeps its state, and every refusal comes before any
weight changes."""
from __future__ import annotations

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Dropout, Input, Sequential
from gradfit.callbacks import (BackupAndRestore, EarlyStopping, GradientNoiseScale,
                               ReduceLROnPlateau)
from gradfit.curvature import ENV_VAR, InsufficientMemoryError
from gradfit.lab.second_order import build_model, sin_problem
from gradfit.optimizers.second_order import METHODS, LevenbergMarquardt, Objective, SecondOrderError

SIN = sin_problem()
FIT_METHODS = ("lm", "newton", "newton_cg", "bfgs", "lbfgs")    # gauss_newton: singular on SIN


def _model(optimizer, seed=0, **compile_args):
    model = build_model(SIN, seed)
    model.compile(optimizer=optimizer, loss="mse", **compile_args)
    return model


@pytest.mark.parametrize("name", FIT_METHODS)
def test_an_epoch_is_one_iteration_of_the_method(name):
    model = _model(name)
    history = model.fit(SIN.x, SIN.y, epochs=5, verbose=0, shuffle=False)
    by_hand = build_model(SIN, 0)
    objective = Objective(by_hand, SIN.x, SIN.y, loss="mse")
    method = gradfit.optimizers.get(name)
    state = method.init(by_hand.params)
    before = [method.iterate(objective, by_hand.params, state)[1]["loss_before"]
              for _ in range(5)]
    assert np.array_equal(model.params, by_hand.params)
    assert history.history["loss"] == before            # the loss before each iteration
    assert model.train_state.opt["step"] == 5 and len(history.history["loss"]) == 5
    assert ("mu" in history.history) == (name == "lm")
    assert "learning_rate" not in history.history


def test_shuffled_rows_take_the_same_steps_to_rounding():
    a, b = _model("lm"), _model("lm")
    a.fit(SIN.x, SIN.y, epochs=6, verbose=0, shuffle=False)
    b.fit(SIN.x, SIN.y, epochs=6, verbose=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)


def test_the_methods_own_stop_ends_training_after_that_epoch(capsys):
    model = _model(LevenbergMarquardt(min_grad=10.0))
    history = model.fit(SIN.x, SIN.y, epochs=20, verbose=1)
    assert len(history.history["loss"]) == 1
    assert model.train_state.stop_reason == "optimizer"
    assert "minimum gradient reached" in model.train_state.stop_message
    assert "lm stopped at epoch 1: minimum gradient reached" in capsys.readouterr().out


def test_early_stopping_and_metrics_work_per_iteration():
    model = _model("bfgs", metrics=["mae"])
    early = EarlyStopping(monitor="loss", min_delta=0.5, patience=2)
    history = model.fit(SIN.x, SIN.y, epochs=50, verbose=0, callbacks=[early])
    assert len(history.history["loss"]) == 3 and model.train_state.stop_reason == "callback"
    start = build_model(SIN, 0).predict(SIN.x)
    assert history.history["mae"][0] == pytest.approx(float(np.mean(np.abs(start - SIN.y))))


@pytest.mark.parametrize("name", ["lm", "bfgs", "lbfgs", "newton_cg"])
def test_backup_resumes_bit_for_bit(name, tmp_path):
    """mu (a float), BFGS's H and previous loss (None at first), the L-BFGS ring (arrays and
    ints) and Newton-CG's previous loss go through the backup: 3 + 3 epochs = 6 epochs."""
    straight = _model(name)
    full = straight.fit(SIN.x, SIN.y, epochs=6, verbose=0)
    first = _model(name)
    first.fit(SIN.x, SIN.y, epochs=3, verbose=0,
              callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    resumed = _model(name, seed=7)                        # other weights: the backup wins
    second = resumed.fit(SIN.x, SIN.y, epochs=6, verbose=0, callbacks=[BackupAndRestore(tmp_path)])
    assert np.array_equal(resumed.params, straight.params)
    assert second.history["loss"] == full.history["loss"]    # History is part of the backup
    for key, value in straight.train_state.opt.items():
        assert np.array_equal(np.asarray(value), np.asarray(resumed.train_state.opt[key])), key


def test_saved_model_keeps_the_state(tmp_path):
    model = _model("lbfgs")
    model.fit(SIN.x, SIN.y, epochs=4, verbose=0)
    model.save(tmp_path / "m.gfm")
    again = gradfit.load_model(tmp_path / "m.gfm")
    assert type(again.optimizer).__name__ == "LBFGS"
    assert again.train_state.opt["count"] == model.train_state.opt["count"] > 0
    model.fit(SIN.x, SIN.y, epochs=2, verbose=0, shuffle=False)
    again.fit(SIN.x, SIN.y, epochs=2, verbose=0, shuffle=False)
    assert np.array_equal(model.params, again.params)


def test_train_on_batch_takes_one_iteration():
    model = _model("lm")
    w0 = model.params.copy()
    loss = model.train_on_batch(SIN.x, SIN.y)
    assert loss == pytest.approx(float(np.mean((build_model(SIN, 0).predict(SIN.x) - SIN.y) ** 2)))
    assert not np.array_equal(model.params, w0) and model.train_state.opt["step"] == 1


def test_a_mini_batch_only_when_asked():
    model = _model("lm")
    w0 = model.params.copy()
    with pytest.raises(ValueError, match="batch_size must be the 41 training examples .*got 8.*"
                                         "set allow_mini_batch for one iteration per batch"):
        model.fit(SIN.x, SIN.y, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be None .* for 'lm'"):
        model.fit(SIN.x, SIN.y, batch_size="auto", verbose=0)
    assert np.array_equal(model.params, w0)
    asked = _model(LevenbergMarquardt(allow_mini_batch=True))
    asked.fit(SIN.x, SIN.y, batch_size=8, epochs=2, verbose=0)
    assert asked.train_state.opt["step"] == 2 * (41 // 8)


def test_refusals_come_before_any_weight_changes(monkeypatch):
    model = _model("lm")
    w0 = model.params.copy()
    for cb in (ReduceLROnPlateau(), GradientNoiseScale()):
        with pytest.raises(ValueError, match="callbacks must be callbacks that need no learning "
                                             f"rate .* 'lm' has neither, got '{type(cb).__name__}'"):
            model.fit(SIN.x, SIN.y, callbacks=[cb], verbose=0)
    mae = build_model(SIN, 0)
    mae.compile(optimizer="lm", loss="mae")
    with pytest.raises(SecondOrderError, match="'lm' needs a squared-error or cross-entropy loss"):
        mae.fit(SIN.x, SIN.y, verbose=0)
    monkeypatch.setenv(ENV_VAR, "1000")
    with pytest.raises(InsufficientMemoryError, match="lm on this 1-5-1 network needs JᵀJ of 16² "
                                                      "float64"):
        model.fit(SIN.x, SIN.y, verbose=0)
    assert np.array_equal(model.params, w0) and np.array_equal(mae.params, w0)
    monkeypatch.delenv(ENV_VAR)
    gradfit.set_random_seed(0)
    dropped = Sequential([Input(shape=(1,)), Dense(5, activation="tanh"), Dropout(0.2), Dense(1)],
                         dtype="float64")
    dropped.compile(optimizer="bfgs", loss="mse")
    with pytest.raises(SecondOrderError, match="dropout would change the function"):
        dropped.fit(SIN.x, SIN.y, verbose=0)
    single = Sequential([Input(shape=(1,)), Dense(1)])
    single.compile(optimizer="lbfgs", loss="mse")
    with pytest.raises(SecondOrderError, match="float64 weights, the model is float32"):
        single.fit(SIN.x, SIN.y, verbose=0)


def test_every_method_is_a_compile_name():
    for name in METHODS:
        model = build_model(SIN, 0)
        model.compile(optimizer=name, loss="mse")
        assert model.optimizer.name == name
