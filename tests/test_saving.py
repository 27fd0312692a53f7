"""Saving: exact round trips (weights, config, compile settings, optimizer state), continuing
training after a load equals never having saved, corruption detected, atomic writes."""
from __future__ import annotations

import os

import numpy as np
import pytest

import gradfit
from gradfit import Activation, Dense, Dropout, Input, Sequential, saving


def _model(dtype="float32"):
    gradfit.set_random_seed(3)
    model = Sequential([Input(shape=(6,)), Dense(8, activation="relu", kernel_initializer="he_normal"),
                        Dropout(0.25), Dense(5, activation="tanh", use_bias=False),
                        Activation("sigmoid"), Dense(3, activation="softmax")],
                       dtype=dtype, name="net")
    model.compile(gradfit.optimizers.Adam(learning_rate=0.01, beta_1=0.8),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=24):
    rs = np.random.default_rng(0)
    return rs.normal(size=(n, 6)), rs.integers(0, 3, size=n)


def _steps(model, x, y, seeds):
    """train_on_batch over 8-example batches, the dropout generator seeded per step."""
    losses = []
    for s in seeds:
        gradfit.set_random_seed(s)
        b = slice((s % 3) * 8, (s % 3) * 8 + 8)
        losses.append(model.train_on_batch(x[b], y[b]))
    return losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trips_exactly(tmp_path, dtype):
    x, y = _data()
    model = _model(dtype)
    _steps(model, x, y, range(4))
    path = tmp_path / "m.gfm"
    model.save(path)
    loaded = gradfit.load_model(path)
    # weights, bit for bit, and the same dtype
    assert loaded.params.dtype == model.params.dtype
    np.testing.assert_array_equal(loaded.params, model.params)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # architecture and compile settings
    assert loaded.get_config() == model.get_config()
    assert loaded.name == "net"
    assert loaded.loss.name == "sparse_categorical_crossentropy"
    assert [n for n, _ in loaded.metrics] == ["accuracy"]
    assert gradfit.optimizers.serialize(loaded.optimizer) == gradfit.optimizers.serialize(model.optimizer)
    assert loaded.optimizer.learning_rate == 0.01
    # optimizer state
    assert loaded.train_state.opt["step"] == model.train_state.opt["step"] == 4
    assert sorted(loaded.train_state.opt) == sorted(model.train_state.opt)
    for k, v in model.train_state.opt.items():
        if k != "step":
            assert loaded.train_state.opt[k].dtype == v.dtype
            np.testing.assert_array_equal(loaded.train_state.opt[k], v)
    # the loaded model's views alias ITS flat buffer
    assert np.shares_memory(loaded.layers[0].kernel, loaded.params)
    # same predictions and same evaluation
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)


def test_continuing_after_load_equals_continuing_without_saving(tmp_path):
    x, y = _data()
    model = _model()
    _steps(model, x, y, range(5))
    model.save(tmp_path / "m.gfm")
    loaded = gradfit.load_model(tmp_path / "m.gfm")
    la = _steps(model, x, y, range(5, 12))
    lb = _steps(loaded, x, y, range(5, 12))
    assert la == lb
    np.testing.assert_array_equal(loaded.params, model.params)
    for k in model.train_state.opt:
        np.testing.assert_array_equal(loaded.train_state.opt[k], model.train_state.opt[k])


def test_continuing_fit_after_load_is_bit_identical(tmp_path):
    x, y = _data(40)
    model = _model()
    gradfit.set_random_seed(9)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    model.save(tmp_path / "m.gfm")
    loaded = gradfit.load_model(tmp_path / "m.gfm")
    gradfit.set_random_seed(10)
    ha = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    gradfit.set_random_seed(10)
    hb = loaded.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    np.testing.assert_array_equal(loaded.params, model.params)


def test_save_without_optimizer_and_uncompiled(tmp_path):
    x, y = _data()
    model = _model()
    _steps(model, x, y, range(2))
    model.save(tmp_path / "w.gfm", include_optimizer=False)
    loaded = gradfit.load_model(tmp_path / "w.gfm")
    np.testing.assert_array_equal(loaded.params, model.params)
    assert loaded.train_state.opt is None and loaded.loss is not None
    plain = Sequential([Input(shape=(3,)), Dense(2)])
    plain.save(tmp_path / "p.gfm")
    back = gradfit.load_model(tmp_path / "p.gfm")
    assert back.loss is None
    np.testing.assert_array_equal(back.params, plain.params)
    assert gradfit.load_model(tmp_path / "w.gfm", compile=False).loss is None


def _saved(tmp_path):
    model = _model()
    model.save(tmp_path / "m.gfm")
    return tmp_path / "m.gfm", (tmp_path / "m.gfm").read_bytes()


@pytest.mark.parametrize("cut", [1, 100, "half", "header"])
def test_truncated_file_is_detected(tmp_path, cut):
    path, blob = _saved(tmp_path)
    keep = {"half": len(blob) // 2, "header": 20}.get(cut, len(blob) - cut if isinstance(cut, int) else 0)
    path.write_bytes(blob[:keep])
    with pytest.raises(gradfit.CorruptFileError, match=str(path.name)):
        gradfit.load_model(path)


@pytest.mark.parametrize("where", [0, 8, 20, 48, "middle", -1])
def test_flipped_byte_is_detected(tmp_path, where):
    """Magic (0), length (8), checksum (20), first payload byte (48), middle, last byte."""
    path, blob = _saved(tmp_path)
    i = len(blob) // 2 if where == "middle" else where % len(blob)
    damaged = bytearray(blob)
    damaged[i] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(gradfit.CorruptFileError):
        gradfit.load_model(path)


def test_other_files_and_missing_files(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "npz").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    for name in ("empty", "npz"):
        with pytest.raises(gradfit.CorruptFileError, match="not a gradfit file"):
            gradfit.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="nope.gfm"):
        gradfit.load_model(tmp_path / "nope.gfm")
    assert issubclass(gradfit.CorruptFileError, ValueError)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    model = _model()
    path = tmp_path / "sub" / "m.gfm"
    model.save(path)
    model.save(path)                        # overwriting works and leaves one file
    assert sorted(os.listdir(tmp_path / "sub")) == ["m.gfm"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path, blob = _saved(tmp_path)
    model = _model()
    model.build()
    model.layers[0].kernel[...] = 0

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(saving.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == blob, "the previous file is untouched"
    assert sorted(os.listdir(tmp_path)) == ["m.gfm"], "the temporary file was removed"


def test_archive_rejects_a_parameter_buffer_of_the_wrong_size(tmp_path):
    model = _model()
    meta, arrays = saving.model_payload(model)
    arrays["params"] = np.zeros(5, dtype=np.float32)
    saving.write_archive(tmp_path / "bad.gfm", meta, arrays)
    with pytest.raises(gradfit.CorruptFileError, match=r"\(5,\)"):
        gradfit.load_model(tmp_path / "bad.gfm")


@pytest.mark.parametrize("make", [lambda: gradfit.optimizers.SGD(learning_rate=0.1, momentum=0.9, clipnorm=0.5),
                                  lambda: gradfit.optimizers.Adam(learning_rate=0.05, clipnorm=0.5, amsgrad=True)])
def test_per_variable_clipnorm_continues_exactly_after_load(tmp_path, make):
    """Per-variable clipnorm needs the variables' segments: a loaded optimizer must have them."""
    rs = np.random.default_rng(0)
    x, y = rs.normal(size=(16, 4)), 10 * rs.normal(size=(16, 2))
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(4,)), Dense(5, activation="tanh"), Dense(2)])
    model.compile(make(), "mse")
    for _ in range(3):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.gfm")
    loaded = gradfit.load_model(tmp_path / "m.gfm")
    assert loaded.optimizer.segments == model.optimizer.segments == model.flat.segments
    for _ in range(3):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    np.testing.assert_array_equal(loaded.params, model.params)


def test_optimizer_state_that_does_not_fit_the_optimizer_is_rejected(tmp_path):
    x, y = _data()
    model = _model()
    _steps(model, x, y, range(2))
    meta, arrays = saving.model_payload(model)
    del arrays["opt/v"]
    saving.write_archive(tmp_path / "bad.gfm", meta, arrays)
    with pytest.raises(gradfit.CorruptFileError, match="optimizer state"):
        gradfit.load_model(tmp_path / "bad.gfm")


def test_saved_file_has_the_usual_permissions(tmp_path):
    """The temporary file of the atomic write is 0600; the saved model follows the umask."""
    mask = os.umask(0o022)
    try:
        Sequential([Input(shape=(2,)), Dense(1)]).save(tmp_path / "m.gfm")
    finally:
        os.umask(mask)
    assert os.stat(tmp_path / "m.gfm").st_mode & 0o777 == 0o644


def test_leaky_relu_slope_survives_save_and_load(tmp_path):
    from gradfit.layers.activations import LeakyReLU
    gradfit.set_random_seed(0)
    model = gradfit.Sequential([gradfit.Input(shape=(4,)),
                                gradfit.Dense(6, activation=LeakyReLU(negative_slope=0.05)),
                                gradfit.Dense(2, activation="leaky_relu")])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(9, 4))
    model.save(tmp_path / "m.gfm")
    loaded = gradfit.load_model(tmp_path / "m.gfm")
    assert loaded.layers[0].activation.negative_slope == 0.05
    assert loaded.layers[1].activation.negative_slope == 0.2
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
