"""EarlyStopping against Keras 3 itself, on scripted sequences of the monitored value.

No training: both callbacks see the same logs epoch by epoch; after epoch ``e`` the model's
weights are tagged with ``e``, so the weights left at the end reveal which epoch was restored.
Keras is driven with a real one-unit Keras model (torch backend) so that ``mode="auto"`` on
``val_accuracy`` uses Keras's own metric-direction lookup.
"""
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from gradfit.callbacks import EarlyStopping  # noqa: E402


class TaggedModel:
    """The model surface EarlyStopping uses; its one weight is the epoch that wrote it."""

    def __init__(self):
        self.stop_training = False
        self.w = [np.array([-1.0])]

    def get_weights(self):
        return [w.copy() for w in self.w]

    def set_weights(self, ws):
        self.w = [np.array(w, copy=True) for w in ws]


@pytest.fixture(scope="module")
def keras_model():
    m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    m.compile(loss="mse", metrics=["accuracy"], optimizer="sgd")
    m.evaluate(np.zeros((2, 1)), np.zeros((2, 1)), verbose=0)   # builds the metrics
    return m


def _drive(cb, model, values, monitor, set_tag, get_tag):
    """Run the epochs; returns (epoch it stopped at or None, epoch of the final weights, cb)."""
    model.stop_training = False
    set_tag(model, -1)
    cb.set_model(model)
    cb.on_train_begin({})
    stop = None
    for e, v in enumerate(values):
        set_tag(model, e)                     # weights at the end of epoch e
        logs = {"loss": 0.0} if v is None else {"loss": 0.0, monitor: v}
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            cb.on_epoch_end(e, logs)
        if model.stop_training:
            stop = e
            break
    cb.on_train_end({})
    return stop, get_tag(model)


def _ours(values, monitor, kw):
    def set_tag(m, e):
        m.set_weights([np.array([float(e)])])
    cb = EarlyStopping(monitor=monitor, **kw)
    stop, tag = _drive(cb, TaggedModel(), values, monitor, set_tag,
                       lambda m: int(m.get_weights()[0][0]))
    return stop, tag, cb


def _keras(values, monitor, kw, model):
    def set_tag(m, e):
        m.set_weights([np.full((1, 1), float(e)), np.array([float(e)])])
    cb = keras.callbacks.EarlyStopping(monitor=monitor, **kw)
    stop, tag = _drive(cb, model, values, monitor, set_tag,
                       lambda m: int(m.get_weights()[1][0]))
    return stop, tag, cb


def _compare(values, kw, keras_model, monitor="val_loss"):
    s1, t1, ours = _ours(values, monitor, kw)
    s2, t2, ref = _keras(values, monitor, kw, keras_model)
    where = f"values={values} kw={kw}"
    assert s1 == s2, f"stop epoch {s1} != keras {s2}; {where}"
    assert t1 == t2, f"final weights from epoch {t1} != keras {t2}; {where}"
    assert ours.stopped_epoch == ref.stopped_epoch, where
    assert ours.best_epoch == ref.best_epoch, where
    assert ours.wait == ref.wait, where
    assert (ours.best is None) == (ref.best is None), where
    if ours.best is not None:
        assert float(ours.best) == float(ref.best), where
    return s1, t1


DOWN = [1.0, 0.8, 0.7, 0.65, 0.64, 0.66, 0.63, 0.7, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76,
        0.77, 0.78, 0.79, 0.8, 0.81]
TIES = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
SLOW = [1.0, 0.995, 0.99, 0.985, 0.98, 0.975, 0.97, 0.965]      # steps of 0.005
MAXS = [0.5, 0.6, 0.7, 0.7, 0.69, 0.71, 0.71, 0.70, 0.70, 0.70]
CASES = [
    # (values, kwargs, monitor, expected (stop epoch, epoch of the final weights))
    (DOWN, dict(patience=0), "val_loss", (5, 5)),
    (DOWN, dict(patience=2, restore_best_weights=True), "val_loss", (8, 6)),
    (DOWN, dict(patience=10, restore_best_weights=True), "val_loss", (16, 6)),
    (DOWN, dict(patience=30, restore_best_weights=True), "val_loss", (None, 6)),   # no stop
    (DOWN, dict(patience=30), "val_loss", (None, 19)),
    (TIES, dict(patience=2, restore_best_weights=True), "val_loss", (3, 1)),       # ties
    (SLOW, dict(patience=1, min_delta=0.01), "val_loss", (1, 1)),
    (SLOW, dict(patience=1, min_delta=0.004, restore_best_weights=True), "val_loss", (None, 7)),
    (DOWN, dict(patience=2, baseline=0.66, restore_best_weights=True), "val_loss", (8, 6)),
    (DOWN, dict(patience=3, baseline=0.1, restore_best_weights=True), "val_loss", (5, 4)),
    (DOWN, dict(patience=0, start_from_epoch=6), "val_loss", (7, 7)),
    (DOWN, dict(patience=2, start_from_epoch=4, restore_best_weights=True), "val_loss", (8, 6)),
    (MAXS, dict(patience=1, mode="max", restore_best_weights=True), "val_accuracy", (3, 2)),
    (MAXS, dict(patience=2, restore_best_weights=True), "val_accuracy", (4, 2)),  # auto: max
    (MAXS, dict(patience=2, mode="min", restore_best_weights=True), "val_accuracy", (2, 0)),
    ([1.0, 1.0 - 1e-9, 1.0 - 2e-9], dict(patience=1), "val_loss", (1, 1)),       # float32 tie
    ([None, None, 0.5, 0.6], dict(patience=0), "val_loss", (3, 3)),               # key missing
    ([0.5, float("nan"), 0.4], dict(patience=0, restore_best_weights=True), "val_loss", (1, 0)),
]


@pytest.mark.parametrize("values,kw,monitor,expected", CASES)
def test_scripted_case_matches_keras(values, kw, monitor, expected, keras_model):
    got = _compare(values, kw, keras_model, monitor)
    assert got == expected          # also pinned, so a change in Keras itself shows up here


def test_random_sequences_match_keras(keras_model):
    """Random walks rounded to 2 decimals (many ties) over random settings."""
    rng = np.random.default_rng(0)
    for _ in range(150):
        n = int(rng.integers(1, 25))
        values = np.round(np.cumsum(rng.normal(-0.01, 0.05, n)) + 1.0, 2).tolist()
        kw = dict(patience=int(rng.integers(0, 6)),
                  min_delta=float(rng.choice([0.0, 0.01, 0.03])),
                  restore_best_weights=bool(rng.integers(0, 2)),
                  start_from_epoch=int(rng.choice([0, 0, 2, 5])),
                  mode=str(rng.choice(["auto", "min", "max"])))
        if rng.random() < 0.3:
            kw["baseline"] = float(np.round(rng.uniform(0.7, 1.1), 2))
        _compare(values, kw, keras_model)


def test_reused_instance_resets_like_keras(keras_model):
    """A second fit with the same instance starts afresh (on_train_begin resets)."""
    ours = EarlyStopping(patience=1, restore_best_weights=True)
    ref = keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    m = TaggedModel()
    for values in ([0.5, 0.6, 0.7], [0.9, 0.8, 0.9, 0.95]):
        s1, t1 = _drive(ours, m, values, "val_loss",
                        lambda m, e: m.set_weights([np.array([float(e)])]),
                        lambda m: int(m.get_weights()[0][0]))
        s2, t2 = _drive(ref, keras_model, values, "val_loss",
                        lambda m, e: m.set_weights([np.full((1, 1), float(e)),
                                                    np.array([float(e)])]),
                        lambda m: int(m.get_weights()[1][0]))
        assert (s1, t1) == (s2, t2)
    assert (s1, t1) == (2, 1)


def test_missing_monitor_warns_listing_keys_like_keras(keras_model):
    """A monitor absent from the logs: a warning listing the keys, and the epoch is skipped."""
    ours = EarlyStopping(monitor="val_accuracy", patience=0)
    ref = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=0)
    for cb, model in ((ours, TaggedModel()), (ref, keras_model)):
        model.stop_training = False
        cb.set_model(model)
        cb.on_train_begin({})
        for e in range(3):
            with pytest.warns(UserWarning, match=r"`val_accuracy` which is not available\. "
                                                 r"Available metrics are: loss,val_loss"):
                cb.on_epoch_end(e, {"loss": 1.0, "val_loss": 2.0})
        assert cb.best is None and cb.wait == 0 and not model.stop_training


def test_undecidable_auto_mode_raises_like_keras(keras_model):
    """mode="auto" on a name of unknown direction: Keras raises at the first epoch end, we
    raise at construction; both name the monitor and point to mode='min'/'max'."""
    ref = keras.callbacks.EarlyStopping(monitor="val_los")
    ref.set_model(keras_model)
    ref.on_train_begin({})
    with pytest.raises(ValueError, match="mode='max'"):
        ref.on_epoch_end(0, {"val_los": 1.0})
    with pytest.raises(ValueError, match=r"'val_los'.*mode='max'.*mode='min'"):
        EarlyStopping(monitor="val_los")
