"""The "cupy" backend's code path on the CPU, through a strict stand-in (tests/fake_cupy.py):
device arrays that refuse implicit conversion to and from numpy, as CuPy's do.  Catches
host/device mixing (np.asarray of a device array, a numpy array in a device operation) that
otherwise only a GPU machine would show.  The real-GPU parity tests are in test_gpu.py."""
import sys

import numpy as np
import pytest

import gradfit
from gradfit import backend

import fake_cupy
from test_gpu import train_both


@pytest.fixture
def fake_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy.module)
    yield fake_cupy.module
    backend.set_backend("numpy")


def test_the_stand_in_is_strict(fake_device):
    d = fake_device.asarray(np.arange(3.0))
    with pytest.raises(TypeError):
        np.asarray(d)
    with pytest.raises(TypeError):
        np.exp(d)
    with pytest.raises(TypeError):
        np.concatenate([d, d])
    with pytest.raises(TypeError):
        d + np.ones(3)
    with pytest.raises(TypeError):
        fake_device.multiply(d, np.ones(3))
    out = fake_device.empty(3)
    fake_device.multiply(d, 2.0, out=out)
    np.testing.assert_array_equal(out.get(), [0.0, 2.0, 4.0])
    assert float(d[2]) == 2.0 and isinstance(d.T, fake_device.ndarray)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamw"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_device_path_trains_like_numpy(fake_device, optimizer, loss):
    train_both(optimizer, loss, rtol=1e-12, atol=1e-14)


def test_the_whole_keras_surface_runs_on_the_device_path(fake_device, tmp_path):
    # fit with the callbacks that touch weights, gradients and files; evaluate, predict,
    # save and load: every host/device crossing explicit
    from gradfit.callbacks import (BackupAndRestore, CSVLogger, EarlyStopping,
                                   GradientNoiseScale, ModelCheckpoint, ReduceLROnPlateau,
                                   TerminateOnNaN)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    backend.set_backend("cupy")
    gradfit.set_random_seed(0)
    model = gradfit.Sequential([gradfit.Input(shape=(6,)), gradfit.Dense(16, activation="relu"),
                                gradfit.Dropout(0.1), gradfit.Dense(3, activation="softmax")])
    model.compile(optimizer=gradfit.optimizers.Adam(1e-2, global_clipnorm=1.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    noise = GradientNoiseScale(every=1, min_steps=2)
    hist = model.fit(x, y, batch_size=20, epochs=6, verbose=0, validation_split=0.25,
                     callbacks=[EarlyStopping(patience=2, restore_best_weights=True), noise,
                                ReduceLROnPlateau(patience=1), TerminateOnNaN(),
                                CSVLogger(str(tmp_path / "log.csv")),
                                ModelCheckpoint(str(tmp_path / "best.gfm"), save_best_only=True),
                                BackupAndRestore(str(tmp_path / "backup"))])
    assert isinstance(model.params, fake_device.ndarray)        # it really ran on the stand-in
    assert isinstance(model.layers[0].kernel, fake_device.ndarray)
    assert np.isfinite(hist.history["loss"]).all() and "b_simple" in hist.history
    loss, acc = model.evaluate(x, y, verbose=0)
    probs = model.predict(x, verbose=0)
    assert isinstance(probs, np.ndarray) and probs.shape == (200, 3)
    model.save(tmp_path / "m.gfm")
    again = gradfit.load_model(tmp_path / "m.gfm")
    np.testing.assert_allclose(again.predict(x, verbose=0), probs, rtol=1e-6)
    assert again.evaluate(x, y, verbose=0) == pytest.approx([loss, acc], rel=1e-6)
    for w in model.get_weights():
        assert isinstance(w, np.ndarray)
