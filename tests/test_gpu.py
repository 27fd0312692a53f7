"""GPU parity: the same code on CuPy gives the numpy results (skips cleanly without a GPU)."""
import numpy as np
import pytest

import gradfit
from gradfit import backend


def _gpu_available():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _gpu_available(), reason="needs CuPy and a CUDA GPU")]


def _train(name, optimizer, loss, x, y, dropout=0.0):
    backend.set_backend(name)
    try:
        gradfit.set_random_seed(3)
        layers = [gradfit.Input(shape=(x.shape[1],)), gradfit.Dense(32, activation="tanh")]
        if dropout:
            layers.append(gradfit.Dropout(dropout))
        layers.append(gradfit.Dense(4, activation="softmax" if "crossentropy" in loss else None))
        model = gradfit.Sequential(layers, dtype="float64")
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"] if "crossentropy" in loss else ["mae"])
        hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2)
        return model.get_weights(), hist.history, model.predict(x)
    finally:
        backend.set_backend("numpy")


def train_both(optimizer, loss, rtol, atol):
    """Train the same network on "numpy" and "cupy" and compare weights, history, outputs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 8))
    y = rng.integers(0, 4, 160) if loss.startswith("sparse") else rng.normal(size=(160, 4))
    w_cpu, h_cpu, p_cpu = _train("numpy", optimizer, loss, x, y, dropout=0.25)
    w_dev, h_dev, p_dev = _train("cupy", optimizer, loss, x, y, dropout=0.25)
    for a, b in zip(w_cpu, w_dev):
        assert isinstance(b, np.ndarray)  # get_weights hands back host arrays
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    for k in h_cpu:
        np.testing.assert_allclose(h_cpu[k], h_dev[k], rtol=rtol)
    assert isinstance(p_dev, np.ndarray)
    np.testing.assert_allclose(p_cpu, p_dev, rtol=rtol, atol=atol)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamw"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_cupy_training_matches_numpy(optimizer, loss):
    train_both(optimizer, loss, rtol=1e-9, atol=1e-12)
