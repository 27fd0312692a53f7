"""The protocol drives training: the data side of the loop (tests/stream_reference.py, what
``fit`` is to call) over a packed uint8 set, a memmap, a PyDataset or a generator trains the
same weights, bit for bit, as today's ``fit`` on the whole array converted up front."""
import numpy as np
import pytest

import gradfit
from gradfit import Dense, Input, Sequential
from gradfit.datasets import DatasetError, PyDataset, Request, StreamSource, as_source, pack
from gradfit.datasets import open as open_packed

from stream_reference import stream_fit

N, WIDTH, CLASSES, B = 300, 12, 4, 25


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, WIDTH), dtype=np.uint8)
    y = (x[:, 0] // 64).astype(np.int64)
    return x, y


def _model(dtype="float32", seed=3):
    gradfit.set_random_seed(seed)
    model = Sequential([Input(shape=(WIDTH,)), Dense(16, activation="relu"),
                        Dense(CLASSES, activation="softmax")], dtype=dtype)
    model.compile(optimizer=gradfit.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _fit_arrays(x, y, dtype="float32", epochs=2, shuffle=True, batch_size=B):
    model = _model(dtype)
    model.fit(x.astype(dtype), y, batch_size=batch_size, epochs=epochs, shuffle=shuffle, verbose=0)
    return model


def _stream(source, dtype="float32", **kw):
    model = _model(dtype)
    stream_fit(model, source, **{"batch_size": B, "epochs": 2, **kw})
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_packed_uint8_set_trains_exactly_as_the_array_in_memory(tmp_path, dtype):
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=40)
    want = _fit_arrays(x, y, dtype)
    got = _stream(open_packed(tmp_path / "p"), dtype)
    assert np.array_equal(got.params, want.params)
    assert got.train_state.opt["step"] == want.train_state.opt["step"] == 2 * (N // B)


@pytest.mark.parametrize("mode", [dict(workers=0), dict(workers=2),
                                  dict(workers=2, processes=True)], ids=str)
def test_prefetch_in_threads_or_processes_changes_nothing(tmp_path, mode):
    x, y = _data()
    np.save(tmp_path / "x.npy", x)
    source = as_source(tmp_path / "x.npy", y)            # a uint8 memmap
    source.prefetch = {**source.prefetch, "processes": False, **mode}
    assert np.array_equal(_stream(source).params, _fit_arrays(x, y).params)


def test_the_block_shuffle_trains_an_epoch_of_equal_batches(tmp_path):
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=30)
    source = open_packed(tmp_path / "p", order="block", block_rows=60)
    model = _model()
    stream_fit(model, source, batch_size=30, epochs=2)
    # every row twice, plus the two rows `peek` read to build the model
    assert model.train_state.opt["step"] == 2 * (N // 30) and source.rows_read == 2 * N + 2
    assert not np.array_equal(model.params, _stream(open_packed(tmp_path / "p")).params)


class _Ordered(PyDataset):
    def __init__(self, x, y, **kw):
        super().__init__(**kw)
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // B

    def __getitem__(self, i):
        return self.x[i * B:(i + 1) * B], self.y[i * B:(i + 1) * B]


@pytest.mark.parametrize("workers, processes", [(1, False), (2, True)])
def test_a_pydataset_in_order_trains_as_fit_without_shuffle(workers, processes):
    x, y = _data()
    ds = _Ordered(x, y, workers=workers, use_multiprocessing=processes)
    got = _stream(as_source(ds), shuffle=False)
    assert np.array_equal(got.params, _fit_arrays(x, y, shuffle=False).params)


def test_an_endless_generator_with_steps_per_epoch_trains_as_fit_without_shuffle():
    x, y = _data()

    def batches():
        while True:
            for i in range(N // B):
                yield x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]
    got = _stream(StreamSource(batches()), steps_per_epoch=N // B, shuffle=False)
    assert np.array_equal(got.params, _fit_arrays(x, y, shuffle=False).params)


def test_a_generator_that_runs_out_ends_the_epoch_with_a_warning_then_stops(recwarn):
    x, y = _data()
    gen = ((x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]) for i in range(5))
    model = _model()
    state = stream_fit(model, StreamSource(gen), steps_per_epoch=8, epochs=3)
    messages = [str(w.message) for w in recwarn]
    assert any("ran out of data at epoch 1 after 5 of 8 batches" in m for m in messages)
    assert any("epoch 2 got no batch; interrupting training" in m for m in messages)
    assert state.epoch == 1 and model.train_state.opt["step"] == 5


def test_a_shard_damaged_mid_epoch_stops_at_that_batch_with_the_good_steps_kept(tmp_path):
    x, y = _data()
    pack(x, y, tmp_path / "p", shard_rows=40)
    source = open_packed(tmp_path / "p")
    source.prefetch["workers"] = 0          # read when asked: the damage lands at step 4
    kept = {}

    def damage(state):
        if state.step == 3:
            kept["params"] = np.array(model.params)
            with open(tmp_path / "p" / "shard-00002.npy", "r+b") as f:
                f.truncate(100)
    model = _model()
    with pytest.raises(DatasetError, match=r"epoch 1, batch 4: .*shard-00002.npy changed while training"):
        stream_fit(model, source, batch_size=B, epochs=1, on_step=damage)
    assert np.array_equal(model.params, kept["params"])    # the failed batch changed nothing


def test_the_request_carries_this_ranks_rows_only():
    # the plan for 2 ranks, computed in one process: each rank asks for its half of every batch
    from gradfit.train.batching import next_batch, rank_slice
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
