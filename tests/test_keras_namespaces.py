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


IMAGES = '''
import numpy as np
rng = np.random.default_rng(1)
x = rng.random((600, 6, 6)).astype("float32")
y = (x[:, :3].mean(axis=(1, 2)) > x[:, 3:].mean(axis=(1, 2))).astype(int)
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(6, 6)), keras.layers.Flatten(),
                          keras.layers.Dense(32, activation="relu"), keras.layers.Dropout(0.2),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:500], y[:500], epochs=30, batch_size=25, verbose=0)
loss, accuracy = model.evaluate(x[500:], y[500:], verbose=0)
shape = model.predict(x[:5], verbose=0).shape
'''


def test_an_image_script_with_flatten_runs_under_both(keras):
    ours = {"keras": gradfit}
    exec(IMAGES, ours)
    theirs = {"keras": keras}
    exec(IMAGES, theirs)
    assert ours["shape"] == theirs["shape"] == (5, 2)
    assert ours["accuracy"] > 0.8 and theirs["accuracy"] > 0.8


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


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("name", list(gradfit.optimizers.OPTIMIZERS))
def test_optimizer_arguments_sit_where_keras_puts_them(name, keras):
    # Keras code passes optimizer arguments positionally too: every argument gradfit shares
    # with Keras is at Keras's position; gradfit's own (epsilon_inside_sqrt, fused) are
    # keyword-only, so no positional call can reach them by accident
    import inspect

    def positional(f):
        return [p.name for p in inspect.signature(f).parameters.values()
                if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]
    theirs, ours = positional(getattr(keras.optimizers, name).__init__), \
        positional(getattr(gradfit.optimizers, name).__init__)
    assert ours == theirs[:len(ours)], (ours, theirs)
    own = {p.name for p in inspect.signature(getattr(gradfit.optimizers, name).__init__)
           .parameters.values() if p.kind == p.KEYWORD_ONLY}
    assert "fused" in own


def test_on_batch_calls_return_what_keras_returns(keras):
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) * 3
    y1, y2 = np.array([0, 1, 2, 0, 1, 2]), np.array([2, 2, 1, 1, 0, 0])
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(4, activation="tanh"),
                           keras.layers.Dense(3, activation="softmax")])
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
               metrics=["accuracy"])
    gm = gradfit.Sequential([gradfit.Input(shape=(3,)), gradfit.Dense(4, activation="tanh"),
                             gradfit.Dense(3, activation="softmax")], dtype="float64")
    gm.compile(optimizer=gradfit.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
               metrics=["accuracy"])
    gm.set_weights(km.get_weights())
    for x, y in ((x1, y1), (x2, y2), (x1, y1)):   # each step's update feeds the next call
        np.testing.assert_allclose(gm.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    np.testing.assert_allclose(gm.test_on_batch(x2, y2), km.test_on_batch(x2, y2), rtol=1e-5)
    ours, theirs = gm.train_on_batch(x2, y2, return_dict=True), km.train_on_batch(x2, y2, return_dict=True)
    assert set(ours) == set(theirs)
    np.testing.assert_allclose(gm.predict_on_batch(x1), km.predict_on_batch(x1), rtol=1e-5)


@pytest.mark.parametrize("loss,units,labels", [
    ("SparseCategoricalCrossentropy", 3, "sparse"),
    ("CategoricalCrossentropy", 3, "onehot"),
    ("BinaryCrossentropy", 1, "binary")])
def test_from_logits_losses_train_like_keras(loss, units, labels, keras, tmp_path):
    # the TensorFlow tutorials' form: a linear last layer and loss(from_logits=True)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 4))
    y = {"sparse": rng.integers(0, 3, 8), "onehot": np.eye(3)[rng.integers(0, 3, 8)],
         "binary": rng.integers(0, 2, (8, 1)).astype(float)}[labels]
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation="tanh"),
                           keras.layers.Dense(units)])
    km.compile(optimizer=keras.optimizers.SGD(0.5),
               loss=getattr(keras.losses, loss)(from_logits=True))
    gm = gradfit.Sequential([gradfit.Input(shape=(4,)), gradfit.Dense(5, activation="tanh"),
                             gradfit.Dense(units)], dtype="float64")
    gm.compile(optimizer=gradfit.optimizers.SGD(0.5),
               loss=getattr(gradfit.losses, loss)(from_logits=True))
    gm.set_weights(km.get_weights())
    for _ in range(4):   # the losses agree, and so do the updates that follow from the gradients
        np.testing.assert_allclose(gm.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    np.testing.assert_allclose(gm.evaluate(x, y), km.evaluate(x, y, verbose=0), rtol=1e-5)
    z = rng.normal(size=(8, units)) * 3     # the loss object called on its own, as in Keras
    np.testing.assert_allclose(getattr(gradfit.losses, loss)(from_logits=True)(y, z),
                               float(getattr(keras.losses, loss)(from_logits=True)(y, z)),
                               rtol=1e-5)
    gm.save(tmp_path / "m.gfm")
    assert gradfit.load_model(tmp_path / "m.gfm").loss.from_logits
    with pytest.raises(ValueError, match="from_logits must be True or False"):
        getattr(gradfit.losses, loss)(from_logits="yes")


@pytest.mark.parametrize("optimizer", [("SGD", dict(learning_rate=0.1, momentum=0.9)),
                                       ("RMSprop", dict(learning_rate=0.01, momentum=0.5))])
def test_fit_history_equals_keras_epoch_by_epoch(optimizer, keras):
    # same weights, no shuffling, 72 training examples in batches of 16: with Keras's partial
    # last batch (drop_remainder=False) every epoch's loss, accuracy and validation values and
    # the final weights agree with Keras 3's fit (float32 there, float64 here)
    name, kwargs = optimizer
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 5)), rng.integers(0, 3, 96)
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.Dense(3, activation="softmax")])
    km.compile(optimizer=getattr(keras.optimizers, name)(**kwargs),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    gm = gradfit.Sequential([gradfit.Input(shape=(5,)), gradfit.Dense(8, activation="relu"),
                             gradfit.Dense(3, activation="softmax")], dtype="float64")
    gm.compile(optimizer=getattr(gradfit.optimizers, name)(epsilon_inside_sqrt=True, **kwargs)
               if name == "RMSprop" else getattr(gradfit.optimizers, name)(**kwargs),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    gm.set_weights(km.get_weights())
    _fit_both_and_compare(gm, km, x, y, epochs=4)


def _fit_both_and_compare(gm, km, x, y, epochs):
    """fit both models alike (no shuffling, Keras's partial last batch); every epoch's logs
    and the final weights must agree to float32 precision (Keras runs in float32)."""
    common = dict(batch_size=16, epochs=epochs, shuffle=False, validation_split=0.25, verbose=0)
    theirs = km.fit(x, y, **common).history
    ours = gm.fit(x, y, drop_remainder=False, **common).history
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=2e-5, atol=1e-6)
    for a, b in zip(gm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


def test_weight_regularizers_train_like_keras(keras, tmp_path):
    # kernel_regularizer / bias_regularizer: the penalty is in the training, validation and
    # evaluate losses and its gradient in every step, as in Keras 3
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(96, 5)), rng.integers(0, 3, 96)

    def layers(m):
        return [m.Input(shape=(5,)),
                m.layers.Dense(8, activation="relu", kernel_regularizer=m.regularizers.L2(0.02),
                               bias_regularizer=m.regularizers.L1(0.01)),
                m.layers.Dense(3, activation="softmax",
                               kernel_regularizer=m.regularizers.L1L2(l1=0.005, l2=0.01))]
    keras.utils.set_random_seed(0)
    km = keras.Sequential(layers(keras))
    km.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    gm = gradfit.Sequential(layers(gradfit), dtype="float64")
    gm.compile(optimizer=gradfit.optimizers.SGD(0.1, momentum=0.9),
               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    gm.set_weights(km.get_weights())
    np.testing.assert_allclose(gm.evaluate(x, y), km.evaluate(x, y, verbose=0), rtol=1e-5)
    _fit_both_and_compare(gm, km, x, y, epochs=3)
    np.testing.assert_allclose(gm.train_on_batch(x[:16], y[:16]), km.train_on_batch(x[:16], y[:16]),
                               rtol=2e-5)
    gm.save(tmp_path / "m.gfm")
    again = gradfit.load_model(tmp_path / "m.gfm")
    assert again.evaluate(x, y) == pytest.approx(gm.evaluate(x, y), rel=1e-12)
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        gradfit.regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="unknown regularizer"):
        gradfit.layers.Dense(3, kernel_regularizer="l3")
