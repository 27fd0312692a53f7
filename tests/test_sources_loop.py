"""``fit``, ``evaluate`` and ``predict`` over every input kind train and compute exactly what
they do on the array in memory: a packed uint8 set, a memmap, a PyDataset, a generator (the
one loop reads them all through `gradfit.train.feed`), bit for bit."""
import io
import multiprocessing
import threading
import warnings

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Dropout, Input, Sequential
from gradfit.callbacks import AdaptiveBatchSize, Callback, EarlyStopping, ProgbarLogger
from gradfit.datasets import DatasetError, PyDataset, Request, as_source, pack
from gradfit.datasets import open as open_packed
from gradfit.lab.second_order import build_model, sin_problem
from gradfit.optimizers.second_order import SecondOrderError
from gradfit.train.batching import next_batch, rank_slice

N, WIDTH, CLASSES, B = 300, 12, 4, 25


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, WIDTH), dtype=np.uint8)
    y = (x[:, 0] // 64).astype(np.int64)
    return x, y


def _model(dtype="float32", seed=3, dropout=0.0):
    gradfit.set_random_seed(seed)
    layers = [Input(shape=(WIDTH,)), Dense(16, activation="relu")]
    layers += [Dropout(dropout)] if dropout else []
    model = Sequential(layers + [Dense(CLASSES, activation="softmax")], dtype=dtype)
    model.compile(optimizer=gradfit.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _fit(x, y=None, dtype="float32", dropout=0.0, **kw):
    model = _model(dtype, dropout=dropout)
    history = model.fit(x, y, **{"epochs": 2, "verbose": 0, **kw})
    return model, history


def _same(a, b):
    return np.array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_packed_uint8_set_trains_exactly_as_the_array_in_memory(tmp_path, dtype):
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=40)
    want, h_want = _fit(x.astype(dtype), y, dtype, dropout=0.25, batch_size=B)
    source = open_packed(tmp_path / "p")
    got, h_got = _fit(source, dtype=dtype, dropout=0.25, batch_size=B)
    assert _same(got, want) and h_got.history == h_want.history
    assert got.train_state.opt["step"] == 2 * (N // B)
    assert source.rows_read == 2 * (N // B) * B          # every trained row once per epoch
    # the path of the directory works as well as the opened source
    assert _same(_fit(str(tmp_path / "p"), dtype=dtype, dropout=0.25, batch_size=B)[0], want)


@pytest.mark.parametrize("mode", [dict(workers=0), dict(workers=2),
                                  dict(workers=2, processes=True)], ids=str)
def test_a_memmap_read_ahead_in_threads_or_processes_changes_nothing(tmp_path, mode):
    x, y = _data()
    np.save(tmp_path / "x.npy", x)
    source = as_source(tmp_path / "x.npy", y)            # a uint8 memmap
    source.prefetch = {**source.prefetch, "processes": False, **mode}
    assert _same(_fit(source, batch_size=B)[0], _fit(x.astype(np.float32), y, batch_size=B)[0])


def test_the_block_shuffle_trains_epochs_of_equal_disjoint_batches(tmp_path):
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=30)
    source = open_packed(tmp_path / "p", order="block", block_rows=60)
    model, _ = _fit(source, batch_size=30)
    assert model.train_state.opt["step"] == 2 * (N // 30) and source.rows_read == 2 * N
    assert not _same(model, _fit(open_packed(tmp_path / "p"), batch_size=30)[0])


class _Ordered(PyDataset):
    def __init__(self, x, y, **kw):
        super().__init__(**kw)
        self.x, self.y = x, y
        self.epochs_ended = 0

    def __len__(self):
        return len(self.x) // B

    def __getitem__(self, i):
        return self.x[i * B:(i + 1) * B], self.y[i * B:(i + 1) * B]

    def on_epoch_end(self):
        self.epochs_ended += 1


@pytest.mark.parametrize("workers, processes", [(0, False), (1, False), (2, True)])
def test_a_pydataset_in_order_trains_as_fit_without_shuffle(workers, processes):
    x, y = _data()
    ds = _Ordered(x, y, workers=workers, use_multiprocessing=processes)
    got, _ = _fit(ds, shuffle=False)
    assert _same(got, _fit(x, y, shuffle=False, batch_size=B)[0])
    assert ds.epochs_ended == 2 and not multiprocessing.active_children()


def test_a_shuffled_pydataset_draws_its_batch_order_from_gradfits_generator():
    x, y = _data()
    first, second = _fit(_Ordered(x, y))[0], _fit(_Ordered(x, y))[0]
    assert _same(first, second)
    assert not _same(first, _fit(_Ordered(x, y), shuffle=False)[0])


def _endless(x, y):
    while True:
        for i in range(N // B):
            yield x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]


def test_an_endless_generator_with_steps_per_epoch_trains_as_fit_without_shuffle():
    x, y = _data()
    got, _ = _fit(_endless(x, y), steps_per_epoch=N // B, shuffle=False)
    assert _same(got, _fit(x, y, shuffle=False, batch_size=B)[0])


def test_a_list_of_batches_is_iterated_afresh_every_epoch():
    x, y = _data()
    batches = [(x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]) for i in range(N // B)]
    got, history = _fit(batches, epochs=3)
    assert _same(got, _fit(x, y, shuffle=False, batch_size=B, epochs=3)[0])
    assert len(history.history["loss"]) == 3


def test_a_generator_that_runs_out_ends_the_epoch_with_a_warning_then_stops(recwarn):
    x, y = _data()
    gen = ((x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]) for i in range(5))
    model, history = _fit(gen, steps_per_epoch=8, epochs=3)
    messages = [str(w.message) for w in recwarn]
    assert any("ran out of data at epoch 1 after 5 of 8 batches" in m for m in messages)
    assert any("epoch 2 got no batch; interrupting training" in m for m in messages)
    assert model.train_state.opt["step"] == 5 and len(history.history["loss"]) == 1
    assert model.train_state.stop_reason == "exhausted"


def test_steps_per_epoch_cuts_epochs_from_a_pass_that_continues_as_keras():
    # 12 batches per pass: 4 epochs of 6 steps are 2 passes, the same batches as 2 epochs
    x, y = _data()
    got, history = _fit(x, y, batch_size=B, epochs=4, steps_per_epoch=6, dropout=0.3)
    assert len(history.history["loss"]) == 4
    assert _same(got, _fit(x, y, batch_size=B, epochs=2, dropout=0.3)[0])
    with pytest.warns(UserWarning) as caught:
        model, _ = _fit(x, y, batch_size=B, epochs=2, steps_per_epoch=20)
    assert [str(w.message)[:75] for w in caught] == [
        f"Your input ran out of data at epoch {e} after 12 of 20 batches: the pass over"
        for e in (1, 2)]
    assert model.train_state.opt["step"] == 24       # each epoch a new pass of 12 batches


def test_adaptive_batch_size_over_a_packed_set_takes_the_arrays_trajectory(tmp_path):
    # the batch grows mid-epoch: batches read ahead at the old size are dropped and read again
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=50)

    def run(data, labels=None):
        model = _model()
        auto = AdaptiveBatchSize(8, 64, every=2, min_steps=2, ema=0.5)
        model.fit(data, labels, batch_size="auto", epochs=3, verbose=0, callbacks=[auto])
        return model, auto.history["batch_size"]
    want, sizes = run(x, y)
    got, got_sizes = run(open_packed(tmp_path / "p"))
    assert max(sizes) > 8, "the batch should grow in this run"
    assert got_sizes == sizes and _same(got, want)


def test_validation_and_evaluation_from_a_generator_and_a_packed_set(tmp_path):
    x, y = _data()
    xv, yv = _data(seed=1)
    pack(xv, yv, tmp_path / "val", shard_rows=70)
    want, h_want = _fit(x, y, batch_size=B, validation_data=(xv, yv))
    val_batches = lambda: ((xv[i:i + 50], yv[i:i + 50]) for i in range(0, N, 50))   # noqa: E731
    for val in (open_packed(tmp_path / "val"), _endless(xv, yv)):
        steps = None if not hasattr(val, "__next__") else N // B
        got, h_got = _fit(x, y, batch_size=B, validation_data=val, validation_steps=steps)
        assert h_got.history["val_loss"] == pytest.approx(h_want.history["val_loss"], rel=1e-6)
        assert h_got.history["val_accuracy"] == h_want.history["val_accuracy"]
    loss, acc = want.evaluate(xv, yv)
    assert want.evaluate(val_batches()) == pytest.approx([loss, acc], rel=1e-6)
    assert want.evaluate(str(tmp_path / "val"), batch_size=7) == pytest.approx([loss, acc], rel=1e-6)
    assert want.evaluate(_endless(xv, yv), steps=N // B) == pytest.approx([loss, acc], rel=1e-6)
    out = want.predict(xv)
    assert np.array_equal(want.predict(open_packed(tmp_path / "val"), batch_size=33), out)
    assert np.array_equal(want.predict(_Ordered(xv, yv)), out[:len(out) // B * B])
    assert np.array_equal(want.predict((b for b, _ in val_batches())), out)


def test_a_one_shot_validation_generator_without_steps_is_a_clear_error():
    x, y = _data()
    gen = ((x[i:i + 50], y[i:i + 50]) for i in range(0, N, 50))
    with pytest.raises(DatasetError, match="validation_data yielded no batch.*validation_steps"):
        _fit(x, y, batch_size=B, validation_data=gen, epochs=2)


def test_batch_size_is_refused_with_data_that_bring_their_own_batches():
    x, y = _data()
    with pytest.raises(ValueError, match=r"batch_size must be None for a _Ordered of 12 batches"):
        _fit(_Ordered(x, y), batch_size=32)
    with pytest.raises(ValueError, match="validation_split must be 0 for a _Ordered"):
        _fit(_Ordered(x, y), validation_split=0.1)


def test_a_memmap_is_checked_per_batch_arrays_in_memory_before_training(tmp_path):
    x, y = _data()
    bad = x.astype(np.float32)
    bad[N - 1, 3] = np.nan
    with pytest.raises(DatasetError, match=r"before training: data row 299, column 3: x is nan"):
        _fit(bad, y, batch_size=B)
    np.save(tmp_path / "x.npy", bad)
    model = _model()
    kept = []
    with pytest.raises(DatasetError, match=r"epoch 1, batch \d+: x.npy row 299, column 3: x is nan"):
        model.fit(str(tmp_path / "x.npy"), y, batch_size=B, shuffle=False, verbose=0,
                  callbacks=[_Keep(kept)])
    assert model.train_state.opt["step"] == N // B - 1      # row 299 is in the last batch
    assert np.array_equal(model.params, kept[-1])           # the failed batch changed nothing


class _Keep(Callback):
    """Keeps the weights after every step; damages a shard after step ``at`` when asked."""

    def __init__(self, kept, at=None, damage=None):
        super().__init__()
        self.kept, self.at, self.damage = kept, at, damage

    def on_train_batch_end(self, batch, logs=None):
        self.kept.append(np.array(self.model.params))
        if self.damage is not None and batch + 1 == self.at:
            self.damage()


def test_a_shard_damaged_mid_epoch_stops_at_that_batch_with_the_good_steps_kept(tmp_path):
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=40)
    source = open_packed(tmp_path / "p", workers=0)   # read when asked: the damage lands at step 4

    def damage():
        with open(tmp_path / "p" / "shard-00002.npy", "r+b") as f:
            f.truncate(100)
    kept = []
    model = _model()
    with pytest.raises(DatasetError, match=r"epoch 1, batch 4: .*shard-00002.npy changed while "
                                           r"training"):
        model.fit(source, batch_size=B, epochs=1, verbose=0, callbacks=[_Keep(kept, 3, damage)])
    assert np.array_equal(model.params, kept[-1]) and len(kept) == 3


class _Raising(_Ordered):
    def __getitem__(self, i):
        if i == 5:
            raise KeyError("image 17 missing")
        return super().__getitem__(i)


@pytest.mark.parametrize("stop", ["early_stop", "nan", "error"])
def test_whatever_ends_fit_its_worker_processes_and_threads_are_gone(stop):
    x, y = _data()
    ds = (_Raising if stop == "error" else _Ordered)(x, y, workers=2, use_multiprocessing=True)
    model = _model()
    if stop == "nan":
        model.compile(optimizer=gradfit.optimizers.SGD(1e30), loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if stop == "error":
            with pytest.raises(DatasetError, match=r"_Raising.__getitem__\(5\) raised KeyError"):
                model.fit(ds, epochs=3, shuffle=False, verbose=0)
        else:
            stopper = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
            with np.errstate(all="ignore"):
                model.fit(ds, epochs=5, verbose=0, callbacks=[stopper])
            assert model.train_state.stop_reason == {"early_stop": "callback", "nan": "nan"}[stop]
    assert not multiprocessing.active_children()
    assert not [t for t in threading.enumerate() if t.name.startswith("gradfit-prefetch")]


def test_the_request_carries_this_ranks_rows_only():
    # the plan for 2 ranks, computed in one process: each rank asks for its half of every batch
    x, y = _data()
    sources = [as_source(x, y), as_source(x, y)]
    order = sources[0].epoch_order(np.random.default_rng(0))
    seen = 0
    while (batch := next_batch(order, seen, B + 1)) is not None:
        parts = [rank_slice(batch, r, 2)[0] for r in range(2)]
        for r in range(2):
            sources[r].fetch(Request(0, 0, parts[r]))
        assert np.array_equal(np.concatenate(parts), batch)
        seen += len(batch)
    assert sources[0].rows_read + sources[1].rows_read == seen
    assert abs(sources[0].rows_read - sources[1].rows_read) <= seen // (B + 1)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("steps", [None, N // B])
def test_the_progress_bar_shows_a_total_when_known_and_a_count_when_not(steps):
    x, y = _data()
    bar = _Terminal()
    model = _model()
    model.fit(_endless(x, y) if steps else (b for b in _batches(x, y)), epochs=1,
              steps_per_epoch=steps, verbose=1,
              callbacks=[ProgbarLogger(verbose=1, stream=bar, interval=0)])
    drawn = bar.getvalue()
    if steps:
        assert f"1/{steps} [" in drawn and "Unknown" not in drawn
    else:
        assert "1/Unknown" in drawn and f"{N // B}/{N // B} - " in drawn


def _batches(x, y):
    return [(x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]) for i in range(N // B)]


def test_bad_batches_and_empty_inputs_through_fit_are_one_clear_message():
    x, y = _data()

    def changing():
        yield x[:B], y[:B]
        yield x[B:2 * B, :5], y[B:2 * B]

    def bad_label():
        yield x[:B], y[:B]
        yield x[B:2 * B], np.full(B, 9)
    for gen, message in ((changing(), r"epoch 1, batch 2: the generator returned rows of shape "
                                      r"\(5,\), earlier batches had rows of shape \(12,\)"),
                         (bad_label(), r"epoch 1, batch 2: row 0 of the batch: label 9 is out of "
                                       r"range; class labels must be 0..3"),
                         (iter(()), "the generator yielded no batch"),
                         (np.zeros((0, WIDTH)), r"x is empty \(0 rows")):
        model = _model()
        with pytest.raises(DatasetError, match=message):
            model.fit(gen, y[:0] if isinstance(gen, np.ndarray) else None, epochs=1, verbose=0)


def test_a_second_order_method_takes_its_full_batch_from_a_memmap_and_refuses_a_generator(tmp_path):
    sin = sin_problem()
    np.save(tmp_path / "x.npy", sin.x)

    def lm():
        model = build_model(sin, 0)
        model.compile(optimizer="lm", loss="mse")
        return model
    want, got = lm(), lm()
    want.fit(sin.x, sin.y, epochs=4, verbose=0, shuffle=False)
    got.fit(str(tmp_path / "x.npy"), sin.y, epochs=4, verbose=0, shuffle=False)
    assert np.array_equal(got.params, want.params)
    with pytest.raises(SecondOrderError, match="takes the whole training set as one batch: give "
                                               "it rows"):
        lm().fit(iter([(sin.x, sin.y)]), epochs=1, verbose=0)
