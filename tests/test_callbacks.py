"""Callbacks driven by scripted logs on a fake model (no training)."""
import io
import json
import os
import warnings

import numpy as np
import pytest

from gradfit.callbacks import (
    Callback, CallbackList, CSVLogger, EarlyStopping, History, LearningRateScheduler,
    ModelCheckpoint, ProgbarLogger, ReduceLROnPlateau, TerminateOnNaN,
)


class FakeOptimizer:
    def __init__(self, lr=0.1):
        self.learning_rate = lr


class FakeComm:
    def __init__(self, rank=0):
        self.rank, self.size = rank, 2 if rank else 1


class FakeModel:
    """The model surface callbacks may use. Its one weight is a tag (the epoch that set it)."""

    def __init__(self, lr=0.1, rank=0):
        self.stop_training = False
        self.optimizer = FakeOptimizer(lr)
        self.comm = FakeComm(rank)
        self.w = [np.array([-1.0])]
        self.saved = []          # (path, tag) per model.save

    def get_weights(self):
        return [w.copy() for w in self.w]

    def set_weights(self, ws):
        self.w = [np.array(w, copy=True) for w in ws]

    def tag(self, e=None):
        if e is None:
            return int(self.w[0][0])
        self.w = [np.array([float(e)])]

    def save(self, path):
        self.saved.append((path, self.tag()))
        with open(path, "w") as f:
            f.write(str(self.tag()))


def run_epochs(cb, model, logs_per_epoch, start=0, begin=True):
    """on_epoch_begin/end over the logs; returns the epoch it stopped at (or None)."""
    cb.set_model(model)
    if begin:
        cb.on_train_begin({})
    for e, logs in enumerate(logs_per_epoch, start):
        cb.on_epoch_begin(e, {})
        model.tag(e)
        cb.on_epoch_end(e, dict(logs))
        if model.stop_training:
            return e
    return None


def _jsonable(state):
    """json.dumps with numpy arrays as lists: the state must contain nothing else."""
    return json.dumps(state, default=lambda a: a.tolist() if isinstance(a, np.ndarray) else
                      (_ for _ in ()).throw(TypeError(f"not JSON-able: {a!r}")))


# ----------------------------------------------------------------------------- ReduceLROnPlateau
def test_reduce_lr_follows_the_rule_written_here():
    losses = [1.0, 0.9, 0.9, 0.9, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    model = FakeModel(lr=0.1)
    cb = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02, min_delta=0)
    cb.set_model(model)
    cb.on_train_begin({})
    lrs, logged = [], []
    for e, v in enumerate(losses):
        logs = {"val_loss": v}
        cb.on_epoch_end(e, logs)
        logged.append(logs["learning_rate"])
        lrs.append(model.optimizer.learning_rate)
    # e2: wait 1; e3: wait 2 -> 0.05, cooldown 1; e4 improves; e5: cooldown 1->0, wait 0 -> not
    # counted?  Keras: after the decrement it is no longer in cooldown, so wait becomes 1;
    # e6: wait 2 -> 0.025, cooldown 1; e7: cooldown -> 0, wait 1; e8: wait 2 -> max(0.0125, 0.02)
    expect = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02]
    assert np.allclose(lrs, expect), lrs
    assert np.allclose(logged, [0.1] + expect[:-1])   # the rate in force during the epoch


def test_reduce_lr_matches_keras_on_random_sequences():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")

    class Stub:
        def __init__(self):
            self.optimizer = FakeOptimizer(0.1)

    rng = np.random.default_rng(1)
    for _ in range(60):
        values = np.round(np.cumsum(rng.normal(-0.005, 0.03, 30)) + 1.0, 2).tolist()
        kw = dict(factor=float(rng.choice([0.1, 0.5])), patience=int(rng.integers(0, 4)),
                  cooldown=int(rng.integers(0, 3)), min_lr=float(rng.choice([0.0, 0.01])),
                  min_delta=float(rng.choice([0.0, 1e-4, 0.02])),
                  mode=str(rng.choice(["auto", "min", "max"])))
        ours, ref = ReduceLROnPlateau(**kw), keras.callbacks.ReduceLROnPlateau(**kw)
        m1, m2 = FakeModel(0.1), Stub()
        ours.set_model(m1)
        ref.set_model(m2)
        ours.on_train_begin({})
        ref.on_train_begin({})
        for e, v in enumerate(values):
            l1, l2 = {"val_loss": v}, {"val_loss": v}
            ours.on_epoch_end(e, l1)
            ref.on_epoch_end(e, l2)
            assert l1 == l2
            assert m1.optimizer.learning_rate == pytest.approx(
                float(m2.optimizer.learning_rate), rel=1e-12), (values, kw, e)
            assert (ours.wait, ours.cooldown_counter) == (ref.wait, ref.cooldown_counter)


def test_reduce_lr_refuses_a_schedule():
    model = FakeModel()
    model.optimizer.learning_rate = lambda step: 0.1
    cb = ReduceLROnPlateau()
    cb.set_model(model)
    with pytest.raises(TypeError, match="schedule"):
        cb.on_epoch_end(0, {"val_loss": 1.0})


# ----------------------------------------------------------------------------- LearningRateScheduler
@pytest.mark.parametrize("schedule", [lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr,
                                      lambda epoch: 0.1 * 0.5 ** max(epoch - 1, 0)])
def test_scheduler_sets_the_rate_at_epoch_begin(schedule):
    model = FakeModel(lr=0.1)
    cb = LearningRateScheduler(schedule)
    cb.set_model(model)
    seen = []
    for e in range(4):
        cb.on_epoch_begin(e)
        seen.append(model.optimizer.learning_rate)
        logs = {}
        cb.on_epoch_end(e, logs)
        assert logs["learning_rate"] == seen[-1]
    assert np.allclose(seen, [0.1, 0.1, 0.05, 0.025])


def test_scheduler_typeerror_inside_schedule_is_not_hidden():
    def schedule(epoch, lr):
        return lr + "x"            # a bug in the user's function

    cb = LearningRateScheduler(schedule)
    cb.set_model(FakeModel())
    with pytest.raises(TypeError, match="str"):
        cb.on_epoch_begin(0)


@pytest.mark.parametrize("ret,match", [("0.1", "must return a float"),
                                       (float("nan"), "finite"), (-1.0, ">= 0")])
def test_scheduler_rejects_bad_rates(ret, match):
    cb = LearningRateScheduler(lambda e, lr: ret)
    cb.set_model(FakeModel())
    with pytest.raises(ValueError, match=match):
        cb.on_epoch_begin(3)


# ----------------------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_and_names_epoch_and_step(bad, capsys):
    model = FakeModel()
    cb = TerminateOnNaN()
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_begin(2)
    cb.on_train_batch_end(0, {"loss": 0.5})
    assert not model.stop_training
    cb.on_train_batch_end(3, {"loss": bad})
    assert model.stop_training and cb.terminated_at == (2, 3)
    assert f"Epoch 3, step 4: loss is {bad}" in capsys.readouterr().out


def test_terminate_on_nan_raise_error():
    cb = TerminateOnNaN(raise_error=True)
    cb.set_model(FakeModel())
    cb.on_epoch_begin(0)
    with pytest.raises(RuntimeError, match="Epoch 1, step 2: loss is nan"):
        cb.on_train_batch_end(1, {"loss": float("nan")})


def test_nan_stop_still_restores_best_weights():
    """TerminateOnNaN stops gracefully, so EarlyStopping still restores at train end."""
    model = FakeModel()
    cbs = CallbackList([TerminateOnNaN(), EarlyStopping(patience=5, restore_best_weights=True)],
                       model=model)
    cbs.on_train_begin()
    for e, v in enumerate([1.0, 0.5, 0.7]):
        cbs.on_epoch_begin(e)
        model.tag(e)
        cbs.on_train_batch_end(0, {"loss": 1.0})
        cbs.on_epoch_end(e, {"loss": 1.0, "val_loss": v})
    cbs.on_epoch_begin(3)
    model.tag(3)
    cbs.on_train_batch_end(0, {"loss": float("nan")})
    assert model.stop_training
    cbs.on_train_end()
    assert model.tag() == 1


# ----------------------------------------------------------------------------- CSVLogger
def test_csv_logger_writes_keras_format(tmp_path):
    path = tmp_path / "log.csv"
    cb = CSVLogger(path)
    run_epochs(cb, FakeModel(), [{"loss": 0.5, "accuracy": 0.25},
                                 {"loss": 0.25, "accuracy": 0.5, "val_loss": 0.75}])
    cb.on_train_end()
    assert path.read_text().splitlines() == [
        "epoch,accuracy,loss,val_accuracy,val_loss",
        "0,0.25,0.5,NA,NA",
        "1,0.5,0.25,NA,0.75",
    ]
    # append=False truncates at the next fit; append=True keeps rows and writes no header
    cb2 = CSVLogger(path, append=True)
    run_epochs(cb2, FakeModel(), [{"loss": 0.125, "accuracy": 1.0}], start=2)
    assert path.read_text().splitlines()[-1] == "2,1.0,0.125,NA,NA"
    assert len(path.read_text().splitlines()) == 4
    run_epochs(CSVLogger(path, separator=";"), FakeModel(), [{"loss": 1.0, "val_loss": 2.0}])
    assert path.read_text().splitlines() == ["epoch;loss;val_loss", "0;1.0;2.0"]


def test_csv_logger_resume_drops_rows_written_after_the_backup(tmp_path):
    path = tmp_path / "log.csv"
    rows = [{"loss": 1.0 / (e + 1), "val_loss": 2.0 / (e + 1)} for e in range(5)]
    full = CSVLogger(tmp_path / "full.csv")
    run_epochs(full, FakeModel(), rows)
    cb = CSVLogger(path)
    run_epochs(cb, FakeModel(), rows[:2])
    state = json.loads(_jsonable(cb.get_state()))       # backup after epoch 1
    run_epochs(cb, FakeModel(), rows[2:3], start=2, begin=False)   # epoch 2, then killed
    resumed = CSVLogger(path)
    resumed.set_model(FakeModel())
    resumed.on_train_begin({})
    resumed.set_state(state)
    run_epochs(resumed, FakeModel(), rows[2:], start=2, begin=False)
    assert path.read_text() == (tmp_path / "full.csv").read_text()


def test_csv_logger_only_rank0_writes(tmp_path):
    path = tmp_path / "log.csv"
    run_epochs(CSVLogger(path), FakeModel(rank=1), [{"loss": 1.0}])
    assert not path.exists()


# ----------------------------------------------------------------------------- ModelCheckpoint
def test_checkpoint_save_best_only(tmp_path):
    model = FakeModel()
    cb = ModelCheckpoint(str(tmp_path / "best.gradfit"), save_best_only=True)
    run_epochs(cb, model, [{"val_loss": v} for v in [1.0, 0.8, 0.8, 0.9, 0.7, 0.75]])
    assert [tag for _, tag in model.saved] == [0, 1, 4]      # ties do not save
    assert (tmp_path / "best.gradfit").read_text() == "4"
    assert cb.best == 0.7


def test_checkpoint_every_epoch_with_formatted_names_and_max_mode(tmp_path):
    model = FakeModel()
    cb = ModelCheckpoint(str(tmp_path / "sub" / "m-{epoch:02d}-{val_accuracy:.2f}.gradfit"),
                         monitor="val_accuracy")
    run_epochs(cb, model, [{"val_accuracy": 0.5}, {"val_accuracy": 0.25}])
    assert sorted(os.listdir(tmp_path / "sub")) == ["m-01-0.50.gradfit", "m-02-0.25.gradfit"]
    best = ModelCheckpoint(str(tmp_path / "b.gradfit"), monitor="val_accuracy",
                           save_best_only=True, initial_value_threshold=0.4)
    model2 = FakeModel()
    run_epochs(best, model2, [{"val_accuracy": v} for v in [0.3, 0.5, 0.45, 0.6]])
    assert [t for _, t in model2.saved] == [1, 3]            # mode auto: max; 0.3 < threshold


def test_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    model = FakeModel()
    cb = ModelCheckpoint(str(tmp_path / "m.gradfit"), save_best_only=True)
    with pytest.warns(UserWarning, match="Available metrics are: loss"):
        run_epochs(cb, model, [{"loss": 1.0}])
    assert len(model.saved) == 1


def test_checkpoint_save_freq_in_batches_and_rank1_silent(tmp_path):
    model = FakeModel(rank=1)
    cb = ModelCheckpoint(str(tmp_path / "m-{epoch}-{batch}.gradfit"), save_freq=3)
    cb.set_model(model)
    cb.on_train_begin()
    for e in range(2):
        cb.on_epoch_begin(e)
        for b in range(4):
            cb.on_train_batch_end(b, {"loss": 1.0})
        cb.on_epoch_end(e, {"loss": 1.0})
    assert model.saved == [] and os.listdir(tmp_path) == []      # rank 1 never writes
    assert cb.last_saved == str(tmp_path / "m-2-2.gradfit")      # batches 3, 6 -> e1 b3, e2 b2


# ----------------------------------------------------------------------------- ProgbarLogger
class TTY(io.StringIO):
    def isatty(self):
        return True


def _fit_display(stream, verbose, epochs=2, steps=3, rank=0, summary=None):
    params = dict(verbose=verbose, epochs=epochs, steps=steps)
    if summary:
        params["summary"] = summary
    cbs = CallbackList([ProgbarLogger(stream=stream, interval=0)], model=FakeModel(rank=rank),
                       **params)
    cbs.on_train_begin()
    for e in range(epochs):
        cbs.on_epoch_begin(e)
        for b in range(steps):
            cbs.on_train_batch_begin(b)
            cbs.on_train_batch_end(b, {"loss": 1.0 / (b + 1)})
        cbs.on_epoch_end(e, {"loss": 0.5, "val_loss": np.float32(0.0001)})
    cbs.on_train_end()
    return stream.getvalue()


def test_progbar_not_a_terminal_prints_one_line_per_epoch():
    out = _fit_display(io.StringIO(), "auto", summary="batches: 3 of 32 (equal size)")
    lines = out.splitlines()
    assert lines[0] == "batches: 3 of 32 (equal size)"
    assert len(lines) == 3 and "\r" not in out
    for e, line in enumerate(lines[1:], 1):
        assert line.startswith(f"Epoch {e}/2 - 3/3 - 0s - ")
        assert line.endswith(" - loss: 0.5000 - val_loss: 1.0000e-04")


def test_progbar_terminal_redraws_a_bar_with_eta():
    out = _fit_display(TTY(), "auto")
    assert out.count("Epoch 1/2\n") == 1 and out.count("Epoch 2/2\n") == 1
    assert "\r1/3 [==========>...................] - ETA: 0s - loss: 1.0000" in out
    assert "3/3 [==============================] - 0s - " in out
    assert out.endswith("- loss: 0.5000 - val_loss: 1.0000e-04\n")


def test_progbar_silent_for_verbose0_and_rank1():
    assert _fit_display(TTY(), 0) == "" and _fit_display(TTY(), False) == ""
    assert _fit_display(io.StringIO(), True).count("\n") == 2 + 2     # True == 1: header + bar
    assert _fit_display(TTY(), 1, rank=1) == ""
    assert _fit_display(io.StringIO(), 2).count("\n") == 2


@pytest.mark.parametrize("bad", [3, -1, "yes", None])
def test_progbar_rejects_bad_verbose(bad):
    if bad is not None:                  # None means "take params['verbose']"
        with pytest.raises(ValueError, match=f"got {bad!r}"):
            ProgbarLogger(verbose=bad)
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
        CallbackList([ProgbarLogger()], verbose=bad, epochs=1, steps=1)


# ----------------------------------------------------------------------------- CallbackList, History
def test_callback_list_order_logs_and_history():
    calls = []

    class Spy(Callback):
        def on_epoch_end(self, epoch, logs=None):
            calls.append((epoch, dict(logs)))
            logs["spy"] = 1.0          # seen by the callbacks after it

    model = FakeModel(lr=0.25)
    cbs = CallbackList([Spy(), ReduceLROnPlateau(patience=5)], add_history=True,
                       add_progbar=True, model=model, verbose=0, epochs=2, steps=1)
    assert [type(c).__name__ for c in cbs] == ["Spy", "ReduceLROnPlateau", "History",
                                               "ProgbarLogger"]
    cbs.on_train_begin()
    logs = {"loss": np.float32(0.5), "val_loss": np.array(0.25)}
    cbs.on_epoch_end(0, logs)
    assert logs == {"loss": np.float32(0.5), "val_loss": np.array(0.25)}   # caller's untouched
    assert calls == [(0, {"loss": 0.5, "val_loss": 0.25})]
    assert type(calls[0][1]["loss"]) is float
    assert cbs.history.history == {"loss": [0.5], "val_loss": [0.25], "spy": [1.0],
                                   "learning_rate": [0.25]}
    assert model.history is cbs.history and cbs.history.epoch == [0]


def test_callback_list_rejects_non_callbacks_and_reuses_given_history():
    with pytest.raises(TypeError, match=r"callbacks\[1\] is 'EarlyStopping'"):
        CallbackList([History(), "EarlyStopping"])
    h = History()
    cbs = CallbackList([h], add_history=True)
    assert cbs.history is h and len(cbs) == 1


# ----------------------------------------------------------------------------- resume (state)
def test_early_stopping_state_resume_equals_uninterrupted():
    vals = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.74, 0.8, 0.9, 0.95]
    logs = [{"val_loss": v} for v in vals]
    kw = dict(patience=3, restore_best_weights=True, baseline=0.95, min_delta=0.005)
    ref_model = FakeModel()
    ref = EarlyStopping(**kw)
    ref_stop = run_epochs(ref, ref_model, logs)
    ref.on_train_end()
    for cut in range(1, ref_stop + 1):
        first = EarlyStopping(**kw)
        run_epochs(first, FakeModel(), logs[:cut])
        state = first.get_state()
        _jsonable(state)
        model = FakeModel()
        resumed = EarlyStopping(**kw)
        resumed.set_model(model)
        resumed.on_train_begin({})
        resumed.set_state(state)
        stop = run_epochs(resumed, model, logs[cut:], start=cut, begin=False)
        resumed.on_train_end()
        assert stop == ref_stop and model.tag() == ref_model.tag() == 3, cut
        assert resumed.get_state()["best_epoch"] == ref.best_epoch


def test_every_state_round_trips_through_json(tmp_path):
    model = FakeModel()
    cbs = CallbackList([EarlyStopping(restore_best_weights=True, patience=9),
                        ReduceLROnPlateau(patience=1), CSVLogger(tmp_path / "l.csv"),
                        ModelCheckpoint(str(tmp_path / "m.gradfit"), save_best_only=True),
                        TerminateOnNaN(), LearningRateScheduler(lambda e, lr: lr)],
                       add_history=True, add_progbar=True, model=model, verbose=0, epochs=9,
                       steps=1)
    run_epochs(cbs, model, [{"loss": 1.0, "val_loss": v} for v in [1.0, 0.5, 0.6, 0.7]])
    state = cbs.get_state()
    text = _jsonable(state)
    back = json.loads(text)
    back["EarlyStopping#1"]["best_weights"] = [np.asarray(w) for w in
                                               back["EarlyStopping#1"]["best_weights"]]
    other = CallbackList([EarlyStopping(restore_best_weights=True, patience=9),
                          ReduceLROnPlateau(patience=1), CSVLogger(tmp_path / "l.csv"),
                          ModelCheckpoint(str(tmp_path / "m.gradfit"), save_best_only=True),
                          TerminateOnNaN(), LearningRateScheduler(lambda e, lr: lr)],
                         add_history=True, add_progbar=True, model=FakeModel(), verbose=0,
                         epochs=9, steps=1)
    other.on_train_begin()
    other.set_state(back)
    assert _jsonable(other.get_state()) == text
    es = other.callbacks[0]
    assert (es.best, es.best_epoch, es.wait) == (0.5, 1, 2)
    assert (other.callbacks[1].best, other.callbacks[1].wait) == (0.5, 0)   # reduced twice
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.1 * 0.1)
    assert other.history.history["val_loss"] == [1.0, 0.5, 0.6, 0.7]
    with pytest.raises(ValueError, match="this run has no .*ReduceLROnPlateau#1"):
        CallbackList([EarlyStopping()]).set_state(back)
    # a callback that holds state cannot appear on resume; a stateless one (a progress bar) can
    with pytest.raises(ValueError, match="adds EarlyStopping#2, which hold state"):
        CallbackList(other.callbacks + [EarlyStopping()]).set_state(back)
    CallbackList(other.callbacks + [TerminateOnNaN()]).set_state(back)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("make,exc,match", [
    (lambda: EarlyStopping(mode="maximum"), ValueError, "unknown mode 'maximum'.*'auto'"),
    (lambda: EarlyStopping(patience=-1), ValueError, "patience must be an integer >= 0, got -1"),
    (lambda: EarlyStopping(patience=2.5), TypeError, "patience .* got 2.5"),
    (lambda: EarlyStopping(min_delta=-0.1), ValueError, "min_delta .* got -0.1"),
    (lambda: EarlyStopping(start_from_epoch=-2), ValueError, "start_from_epoch .* got -2"),
    (lambda: EarlyStopping(baseline="low"), TypeError, "baseline must be a finite number, got 'low'"),
    (lambda: EarlyStopping(monitor="lr"), ValueError, "monitor='lr'.*mode='max'"),
    (lambda: EarlyStopping(monitor=3), TypeError, "monitor must be .* got 3"),
    (lambda: ReduceLROnPlateau(factor=1.0), ValueError, "0 < factor < 1.*factor=1.0"),
    (lambda: ReduceLROnPlateau(cooldown=-1), ValueError, "cooldown .* got -1"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), ValueError, "min_lr .* got -0.001"),
    (lambda: ModelCheckpoint("m.gradfit", save_freq="batch"), TypeError, "save_freq .* 'batch'"),
    (lambda: ModelCheckpoint("m.gradfit", save_freq=0), ValueError, "save_freq .* got 0"),
    (lambda: LearningRateScheduler(0.1), TypeError, "needs a function .* got 0.1"),
    (lambda: CSVLogger("l.csv", separator=",,"), ValueError, "one character, got ',,'"),
    (lambda: TerminateOnNaN(raise_error="yes"), TypeError, "got 'yes'"),
])
def test_bad_arguments_raise_naming_the_value(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_checkpoint_model_without_save_and_unfillable_path(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "m.gradfit"), save_weights_only=True)
    with pytest.raises(TypeError, match=r"model.save_weights\(path\)"):
        cb.set_model(FakeModel())
    cb = ModelCheckpoint(str(tmp_path / "m-{val_acc}.gradfit"))
    cb.set_model(FakeModel())
    with pytest.raises(KeyError, match="val_acc.*available: epoch, loss"):
        cb.on_epoch_end(0, {"loss": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EarlyStopping(monitor="val_accuracy")     # auto picks max without warning
