"""fit(batch_size="auto") and AdaptiveBatchSize (issue 18) in one process: the trajectory is
applied as recorded (replayed step by step with train_on_batch), batches stay disjoint when the
size changes mid-epoch, the learning-rate factor reaches the step only, bad options are refused
before any work, and the logs and progress line carry the batch size.  The kill-and-resume test
is in test_resume.py, the two-rank one in test_mpi_fit.py."""
import csv
import io
import math
import re

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Input, Sequential
from gradfit.callbacks import (AdaptiveBatchSize, Callback, CSVLogger, GradientNoiseScale,
                               ProgbarLogger)
from gradfit.callbacks import adaptive_batch_size as abs_module
from gradfit.callbacks import gradient_noise_scale as gns_module
from gradfit.memory import training_bytes
from gradfit.train.state import TrainState


def data(n=400, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x[:, 0] = np.arange(n) / n                   # a unique id per row (see the disjointness test)
    y = (x[:, 1] + x[:, 2] > 0).astype(int) + (x[:, 3] > 0.6).astype(int)
    return x.astype(dtype), y


def model_for(optimizer, dtype="float64", seed=1):
    gradfit.set_random_seed(seed)
    m = Sequential([Input(shape=(5,)), Dense(12, activation="tanh"),
                    Dense(3, activation="softmax")], dtype=dtype)
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.build()
    return m


def quick(**kw):
    """Measures every step, a value after 2: the batch grows within the first epochs."""
    return AdaptiveBatchSize(**{"min_batch_size": 8, "max_batch_size": 128, "every": 1,
                                "min_steps": 2, "ema": 0.6, **kw})


# ------------------------------------------------------------------ the trajectory as applied
def test_replaying_the_recorded_trajectory_with_train_on_batch_gives_the_same_weights():
    """Each step's batch (in permutation order, shuffle=False) and learning rate base x factor,
    taken from the decisions AdaptiveBatchSize recorded, reproduce fit's weights exactly: the
    loop used the batch and the factor it was told, from the step after each decision."""
    x, y = data()
    model = model_for(gradfit.optimizers.SGD(learning_rate=0.2))
    start = model.get_weights()
    auto = quick()
    model.fit(x, y, batch_size="auto", epochs=4, shuffle=False, verbose=0, callbacks=[auto])
    assert auto.controller.lr_rule == "sgd"          # "auto" picks McCandlish's rule for SGD
    traj = auto.history
    assert traj["batch_size"][0] == 8 and max(traj["batch_size"]) >= 64
    assert any(f > 1.5 for f in traj["lr_factor"])

    replay = model_for(gradfit.optimizers.SGD(learning_rate=0.2))
    replay.set_weights(start)
    decisions = {s: (b, f) for s, b, f in zip(traj["step"], traj["batch_size"], traj["lr_factor"])}
    batch, factor, step = 8, 1.0, 0
    for _ in range(4):
        seen = 0
        while len(x) - seen >= batch:
            replay.optimizer.learning_rate = 0.2 * factor
            replay.train_on_batch(x[seen:seen + batch], y[seen:seen + batch])
            seen += batch
            step += 1
            batch, factor = decisions.get(step, (batch, factor))
    assert step == auto.steps
    np.testing.assert_array_equal(replay.params, model.params)


def test_batches_stay_disjoint_within_an_epoch_while_the_size_changes():
    """The first layer's input rows of every step (x[:, 0] is a row id): no row twice in an
    epoch, every batch of the size the loop was told, and the epoch ends only when fewer rows
    than the current batch are left."""
    x, y = data(n=300)

    class Rows(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epochs = getattr(self, "epochs", []) + [[]]

        def on_train_batch_begin(self, batch, logs=None):
            self.size = self.model.train_state.batch_size

        def on_train_batch_end(self, batch, logs=None):
            ids = np.rint(self.model.layer_io()[0][0][:, 0] * 300).astype(int)
            assert len(ids) == self.size == logs["batch_size"]
            self.epochs[-1].append(ids)

    rows = Rows()
    auto = quick()
    model_for("adam").fit(x, y, batch_size="auto", epochs=3, verbose=0, callbacks=[auto, rows])
    sizes_changed = False
    for batches in rows.epochs:
        ids = np.concatenate(batches)
        assert len(np.unique(ids)) == len(ids), "a row was used twice in one epoch"
        assert len(x) - len(ids) < len(batches[-1]) or len(x) - len(ids) < 128
        sizes_changed |= len({len(b) for b in batches}) > 1
    assert sizes_changed, "the batch should change mid-epoch in this run"


def test_history_csv_and_trajectory_hold_the_batch_size_per_epoch(tmp_path):
    """batch_size="auto" with no AdaptiveBatchSize given adds one before History and CSVLogger;
    the epoch logs carry batch_size (int), lr_factor and b_simple."""
    x, y = data()
    model = model_for("adam")
    path = tmp_path / "log.csv"
    hist = model.fit(x, y, batch_size="auto", epochs=3, verbose=0, callbacks=[CSVLogger(str(path))])
    batches = hist.history["batch_size"]
    assert len(batches) == 3 and all(isinstance(b, int) for b in batches)
    assert batches == sorted(batches) and batches[0] >= 32      # the default start: 32
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["batch_size"]) for r in rows] == batches
    assert {"lr_factor", "b_simple", "learning_rate"} <= set(rows[0])


def test_the_factor_reaches_the_step_only_and_schedules_are_untouched():
    """A schedule stays the optimizer's learning rate object, logs["learning_rate"] is the
    schedule's own value, while the steps were taken with the factor (the weights differ from
    a run whose factor is held at 1 by lr_rule="none")."""
    x, y = data()
    schedule = gradfit.optimizers.schedules.ExponentialDecay(0.01, 50, 0.5)
    results = {}
    for rule in ("adam", "none"):
        model = model_for(gradfit.optimizers.Adam(learning_rate=schedule))
        auto = quick(lr_rule=rule)
        hist = model.fit(x, y, batch_size="auto", epochs=3, verbose=0, callbacks=[auto])
        assert model.optimizer.learning_rate is schedule
        step = model.train_state.opt["step"]
        assert hist.history["learning_rate"][-1] == pytest.approx(schedule(step))
        results[rule] = (model.params.copy(), hist.history["lr_factor"], auto.history["batch_size"])
    assert results["none"][1] == [1.0, 1.0, 1.0] and max(results["adam"][1]) > 1.2
    assert not np.allclose(results["adam"][0], results["none"][0])


def test_lr_scale_scales_one_update_of_floats_and_schedules_only():
    """The factor reaches one update (``optimizer.update(..., lr_scale=)``, as train_step passes
    state.lr_factor): the same step as a rate that large, while learning_rate stays the base."""
    for base in (0.1, gradfit.optimizers.schedules.InverseTimeDecay(0.1, 10, 1.0)):
        scaled = gradfit.optimizers.SGD(learning_rate=base, fused=False)
        p, g = np.ones(5), np.linspace(-1, 1, 5)
        state = scaled.init(p)
        state["step"] = 10
        scaled.update(p, g.copy(), state, lr_scale=2.5)
        lr = 2.5 * (base if not callable(base) else base(10))
        np.testing.assert_array_equal(p, np.ones(5) - lr * g)
        assert scaled.learning_rate is base


def test_lr_rule_auto_is_adam_s_rule_for_adaptive_optimizers():
    x, y = data(n=64)
    for opt, rule in ((gradfit.optimizers.SGD(0.1, momentum=0.9), "sgd"), (gradfit.optimizers.RMSprop(), "adam"),
                      (gradfit.optimizers.Adam(), "adam")):
        auto = AdaptiveBatchSize()
        model_for(opt).fit(x, y, batch_size="auto", epochs=1, verbose=0, callbacks=[auto])
        assert auto.controller.lr_rule == rule


# ------------------------------------------------------------------ bad input, before any work
def untouched(model, before, capsys):
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert model.train_state.opt is None, "no optimizer state: no step was taken"
    assert capsys.readouterr().out == "", "nothing printed before the refusal"


@pytest.mark.parametrize("kwargs, callbacks, words", [
    (dict(batch_size=32), [AdaptiveBatchSize()], ["batch_size", "'auto'", "32"]),
    (dict(batch_size="big"), [], ["'big'", "'auto'"]),
    (dict(batch_size="auto"), [AdaptiveBatchSize(), AdaptiveBatchSize()], ["at most one"]),
    (dict(batch_size="auto"), [AdaptiveBatchSize(min_batch_size=64)], ["64", "50 training examples"]),
    (dict(batch_size="auto"), [AdaptiveBatchSize(min_batch_size=33, max_batch_size=40)],
     ["no allowed batch size", "rounding='multiple'"]),
])
def test_contradicting_options_are_refused_before_training(kwargs, callbacks, words, capsys):
    x, y = data(n=50)
    model = model_for("adam")
    before = model.get_weights()
    with pytest.raises(ValueError) as err:
        model.fit(x, y, epochs=2, verbose=2, callbacks=callbacks, **kwargs)
    for w in words:
        assert w in str(err.value)
    untouched(model, before, capsys)


class ThreeRanks:
    """A communicator that says it has 3 ranks (this process is rank 0); nothing is exchanged:
    the refusal comes before any collective."""
    rank, size = 0, 3

    def bcast_(self, buf, root=0):
        return buf

    def allreduce_array_(self, buf):
        return buf


def test_a_maximum_that_does_not_divide_by_the_ranks_is_refused(capsys):
    x, y = data(n=600)
    model = model_for("adam")
    model.comm = ThreeRanks()
    before = model.get_weights()
    with pytest.raises(ValueError) as err:
        model.fit(x, y, batch_size="auto", epochs=1, verbose=2,
                  callbacks=[AdaptiveBatchSize(min_batch_size=48, max_batch_size=500)])
    assert "max_batch_size=500" in str(err.value) and "3 ranks" in str(err.value)
    assert "498" in str(err.value)                       # the nearest multiple below
    untouched(model, before, capsys)
    auto = AdaptiveBatchSize()                           # the defaults round to the ranks
    assert auto.make_controller(600, 3).sizes[0] == 48


@pytest.mark.parametrize("kwargs", [dict(min_batch_size=512, max_batch_size=64), dict(lr_rule="lars"),
                                    dict(threshold=1.0), dict(max_factor=1.0), dict(shrink="yes"),
                                    dict(rounding="odd"), dict(method="fast"), dict(every=0),
                                    dict(min_batch_size=0)])
def test_bad_hyperparameters_are_refused_at_construction(kwargs):
    with pytest.raises(ValueError):
        AdaptiveBatchSize(**kwargs)


def test_a_fixed_steps_per_epoch_is_refused():
    with pytest.raises(ValueError, match="steps_per_epoch=10"):
        AdaptiveBatchSize().prepare(model_for("adam"), 400, steps_per_epoch=10)


def test_the_batch_never_exceeds_what_fits_in_memory(monkeypatch, capsys):
    """The memory available caps the sizes: the largest allowed batch fits, the next power of
    two would not (every rank counted on one node); too little memory for the smallest batch
    is refused before training, naming the cap."""
    x, y = data(n=4000, dtype="float32")
    model = model_for("adam", dtype="float32")
    sizes = [5, 12, 3]
    have = training_bytes(sizes, 300, 3, "float32")["total"]
    monkeypatch.setattr(abs_module, "available_bytes", lambda: have)
    auto = AdaptiveBatchSize()
    auto.prepare(model, len(x))
    top = auto.controller.sizes[-1]
    assert top == 256
    assert training_bytes(sizes, top, 3, "float32")["total"] <= have
    assert training_bytes(sizes, 2 * top, 3, "float32")["total"] > have
    monkeypatch.setattr(abs_module, "available_bytes", lambda: training_bytes(sizes, 16, 3, "float32")["total"])
    before = model.get_weights()
    with pytest.raises(ValueError, match="memory cap"):
        model.fit(x, y, batch_size="auto", epochs=1, verbose=2)
    untouched(model, before, capsys)


# ------------------------------------------------------------------ a non-finite estimate
def test_non_finite_norms_are_left_out_with_one_warning_and_training_goes_on(monkeypatch):
    """Per-example norms that overflow (forced here) give no estimate: one RuntimeWarning naming
    the step and the fix, the measurement is left out (counted), the batch is kept, and the
    run finishes."""
    real = gns_module.per_example_grad_sq_norms
    calls = {"n": 0}

    def overflowing(*a, **kw):
        calls["n"] += 1
        sq = real(*a, **kw)
        return sq * np.inf if 5 <= calls["n"] <= 8 else sq
    monkeypatch.setattr(gns_module, "per_example_grad_sq_norms", overflowing)
    x, y = data()
    model = model_for("adam")
    auto = quick()
    with pytest.warns(RuntimeWarning, match="not finite") as record:
        hist = model.fit(x, y, batch_size="auto", epochs=2, verbose=0, callbacks=[auto])
    assert sum("not finite" in str(w.message) for w in record) == 1
    assert "float64" in str(record[0].message)
    assert auto.noise.skipped == 4 and len(auto.noise.history["step"]) == auto.steps - 4
    assert len(hist.history["loss"]) == 2 and all(math.isfinite(v) for v in hist.history["loss"])


def test_the_standalone_noise_scale_skips_non_finite_norms_too(monkeypatch):
    monkeypatch.setattr(gns_module, "per_example_grad_sq_norms",
                        lambda ios, scale=1.0, use_bias=True: np.full(len(ios[0][0]), np.inf))
    x, y = data(n=96)
    cb = GradientNoiseScale(every=1, min_steps=1)
    with pytest.warns(RuntimeWarning, match="left out"):
        model_for("adam").fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[cb])
    assert cb.skipped == 3 and cb.b_simple is None


# ------------------------------------------------------------------ the progress line
class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_line_counts_steps_and_shows_the_batch_size(capsys):
    x, y = data()
    model_for("adam").fit(x, y, batch_size="auto", epochs=2, verbose=2, callbacks=[quick()])
    out = capsys.readouterr().out
    assert "batch size 'auto': global batches of 8 to 128" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("Epoch ")]
    assert len(lines) == 2
    for ln in lines:
        count = ln.split(" - ")[1]
        done, total = count.split("/")
        assert done == total and int(done) > 0, ln
        assert re.search(r" - batch_size: \d+( - |$)", ln), ln     # an int, not 64.0000
    bar = Terminal()
    model_for("adam").fit(x, y, batch_size="auto", epochs=1, verbose=1,
                          callbacks=[quick(), ProgbarLogger(verbose=1, stream=bar, interval=0)])
    drawn = bar.getvalue()
    assert "/Unknown" in drawn and " - batch_size: 8" in drawn
    assert "ETA" not in drawn, "no ETA without a known number of steps"


# ------------------------------------------------------------------ the overhead benchmark
def test_the_overhead_benchmark_times_every_mode_at_every_batch_size(tmp_path, capsys):
    """A smoke run of benchmarks/noise_overhead.py (timings themselves are for a quiet
    machine): every batch size has a time per step for plain, every=10, every=1 and auto, the
    table is printed, and the JSON record says what ran."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "noise_overhead.py"
    spec = importlib.util.spec_from_file_location("noise_overhead", path)
    overhead = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overhead)
    out = tmp_path / "overhead.json"
    overhead.main(["--hidden", "16", "--batch-sizes", "8,32", "--steps", "4", "--repeats", "1",
                   "--out", str(out)])
    rec = json.loads(out.read_text())
    assert rec["network"] == "784-16-10" and [r["batch_size"] for r in rec["rows"]] == [8, 32]
    for row in rec["rows"]:
        assert set(row["seconds_per_step"]) == set(overhead.MODES)
        assert all(t > 0 for t in row["seconds_per_step"].values())
        assert set(row["overhead"]) == {"every=10", "every=1", "auto"}
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["B", "plain", "ms/step", "every=10", "every=1", "auto"]
    assert [ln.split()[0] for ln in table[2:]] == ["8", "32"]
