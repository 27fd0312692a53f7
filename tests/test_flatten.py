"""Flatten: examples with several axes (images) enter a Dense network as vectors."""
import numpy as np
import pytest

import gradfit
from gradfit import Dense, Dropout, Flatten, Input, Sequential

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4, 3)).astype(np.float32)
Y = RNG.integers(0, 3, 40)


def _trained(layers, x):
    gradfit.set_random_seed(1)
    model = Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, Y, batch_size=8, epochs=2, verbose=0, validation_split=0.2)
    return model


def _head():
    return [Dense(8, activation="relu"), Dropout(0.2), Dense(3, activation="softmax")]


@pytest.mark.parametrize("front", ["flatten_input_shape", "input_then_flatten", "from_first_batch"])
def test_flatten_trains_exactly_like_flat_vectors(front):
    layers = {"flatten_input_shape": [Flatten(input_shape=(4, 3))],
              "input_then_flatten": [Input(shape=(4, 3)), Flatten()],
              "from_first_batch": [Flatten()]}[front]
    images = _trained(layers + _head(), X)
    vectors = _trained([Input(shape=(12,))] + _head(), X.reshape(40, -1))
    np.testing.assert_array_equal(images.params, vectors.params)
    assert images.input_shape == (4, 3) and images.input_dim == 12
    np.testing.assert_array_equal(images.predict(X), vectors.predict(X.reshape(40, -1)))
    np.testing.assert_array_equal(images.predict(X.reshape(40, -1)), images.predict(X))


def test_save_and_load_keep_the_example_shape(tmp_path):
    model = _trained([Flatten()] + _head(), X)
    model.save(tmp_path / "m.gfm")
    again = gradfit.load_model(tmp_path / "m.gfm")
    assert again.input_shape == (4, 3)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    lines = []
    again.summary(print_fn=lines.append)
    assert "input shape (4, 3)" in lines[0] and any("(None, 12)" in line for line in lines)


def test_clear_errors_for_shapes_that_do_not_fit():
    with pytest.raises(ValueError, match=r"inputs of shape \(4, 3\) need Flatten\(\) first"):
        Sequential([Input(shape=(4, 3)), Dense(3)])
    model = _trained([Flatten(input_shape=(4, 3))] + _head(), X)
    with pytest.raises(ValueError, match=r"examples of shape \(3, 4\), the model expects \(4, 3\)"):
        model.predict(RNG.normal(size=(5, 3, 4)))
    flat = _trained([Input(shape=(12,))] + _head(), X.reshape(40, -1))
    with pytest.raises(ValueError, match=r"start the model with Flatten\(input_shape=\(4, 3\)\)"):
        flat.predict(X)
    with pytest.raises(ValueError, match="input_shape"):
        Flatten(input_shape=(4, 0))
