"""Keras code with one import changed: the same script runs under ``import keras`` and under
``import gradfit as keras`` (keras.models / layers / optimizers / optimizers.schedules /
callbacks / utils), and learns the same easy task under both."""
import os

import numpy as np
import pytest

import gradfit

SCRIPT = '''
import numpy as np
rng = np.random.default_rng(0)
x = rng.normal(size=(240, 8)).astype("float32")
labels = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
y = keras.utils.to_categorical(labels, 3)
keras.utils.set_random_seed(0)
model = keras.models.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(32, activation="relu"),
                                 keras.layers.Dropout(0.1), keras.layers.Dense(3, activation="softmax")])
schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 20, 0.9)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True),
              loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x[:200], y[:200], batch_size=20, epochs=20, verbose=0,
                    validation_data=(x[200:], y[200:]),
                    callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
loss, accuracy = model.evaluate(x[200:], y[200:], verbose=0)
model.save(path)
again = keras.models.load_model(path)
same = np.allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
'''


def _run(module, path):
    scope = {"keras": module, "path": str(path)}
    exec(SCRIPT, scope)
    return scope


def test_the_same_script_runs_under_keras_and_gradfit(tmp_path):
    ours = _run(gradfit, tmp_path / "ours.keras")
    assert ours["same"] and set(ours["history"].history) >= {"loss", "val_loss", "accuracy"}
    assert ours["accuracy"] > 0.8
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    theirs = _run(keras, tmp_path / "theirs.keras")
    assert theirs["same"] and theirs["accuracy"] > 0.8
    assert set(ours["history"].history) >= set(theirs["history"].history) - {"learning_rate"}


def test_namespaces_hold_the_keras_names():
    from gradfit.optimizers import SGD, Adam, AdamW, RMSprop  # noqa: F401
    from gradfit.optimizers.schedules import (CosineDecay, ExponentialDecay,  # noqa: F401
                                              InverseTimeDecay, LearningRateSchedule)
    assert gradfit.models.Sequential is gradfit.Sequential
    assert gradfit.models.load_model is gradfit.load_model
    assert isinstance(ExponentialDecay(0.1, 10, 0.5), LearningRateSchedule)
    np.testing.assert_array_equal(gradfit.utils.to_categorical([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="out of range"):
        gradfit.utils.to_categorical([3], 3)
