"""Generators, iterables and PyDataset as batch sources: Keras 3's contract and semantics (run
against Keras itself where Keras has them), the stream cursor, and every bad batch named."""
import os
import warnings

import numpy as np
import pytest

import gradfit
from gradfit.datasets import (Conversion, DatasetError, Exhausted, PyDataset, PyDatasetSource,
                              Request, StreamSource, as_source)
from gradfit.datasets.sources import ran_out_message


def _batches(n, rows=4, width=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((rows, width)), rng.integers(0, 3, rows)) for _ in range(n)]


def _gen(batches):
    yield from batches


def _fetch(src, key, step=None, epoch=0):
    return src.fetch(Request(epoch, key if step is None else step, key))


# ---------------------------------------------------------------------------- streams
def test_a_generator_is_read_in_order_and_converted_per_batch():
    data = _batches(3)
    src = StreamSource(_gen(data))
    src.bind(Conversion("float64", num_classes=3, labels=True))
    for k in range(3):
        x, y = _fetch(src, k)
        assert np.array_equal(x, data[k][0]) and x.dtype == np.float64
        assert np.array_equal(y, data[k][1]) and y.dtype == np.int64
    with pytest.raises(Exhausted, match="epoch 1, batch 4: the generator ran out of data after 3"):
        _fetch(src, 3)


def test_peek_loses_no_batch_and_is_never_replayed():
    data = _batches(3)
    src = StreamSource(_gen(data))
    x0, _ = src.peek()
    assert np.array_equal(x0, data[0][0].astype(np.float32))
    got = [_fetch(src, k)[0] for k in range(3)]   # batch 0 comes from the peek, once
    assert all(np.array_equal(g, d[0].astype(np.float32)) for g, d in zip(got, data))
    with pytest.raises(Exhausted):                # keras#20402 would replay the peeked batch here
        _fetch(src, 0, step=0, epoch=1)


def test_an_iterable_restarts_each_epoch_a_one_shot_generator_does_not():
    data = _batches(2)
    listed = StreamSource(data)
    assert not listed.one_shot and listed.steps() == 2
    for epoch in range(3):                        # position 0 again: iterate afresh
        assert np.array_equal(listed.fetch(Request(epoch, 0, 0))[0], data[0][0].astype(np.float32))
        listed.fetch(Request(epoch, 1, 1))
    gen = StreamSource(_gen(data))
    assert gen.one_shot and gen.steps() is None and gen.steps(5) == 5
    _fetch(gen, 0), _fetch(gen, 1)
    with pytest.raises(Exhausted):
        gen.fetch(Request(1, 0, 0))


def test_with_steps_per_epoch_the_stream_continues_across_epochs():
    # the loop keeps the position (key) across epochs when steps_per_epoch is given (Keras)
    data = _batches(6)
    src = StreamSource(_gen(data))
    keys = [(epoch, step, epoch * 2 + step) for epoch in range(3) for step in range(2)]
    got = [src.fetch(Request(e, s, k))[0] for e, s, k in keys]
    assert all(np.array_equal(g, d[0].astype(np.float32)) for g, d in zip(got, data))


def test_a_resumed_run_skips_what_was_trained_on_in_a_fresh_generator():
    data = _batches(5)
    fresh = StreamSource(_gen(data))          # a new process re-creates the generator
    x3, _ = fresh.fetch(Request(1, 1, 3))     # the backup said: 3 batches drawn
    assert np.array_equal(x3, data[3][0].astype(np.float32))
    with pytest.raises(Exhausted, match="ran out of data after 5 batches"):
        StreamSource(_gen(data)).fetch(Request(2, 0, 7))


def test_keras_ran_out_warnings_say_what_happens_next():
    assert "the epoch ends here and the next one iterates the data again" in ran_out_message(0, 3, 10)
    assert "epoch 2 got no batch; interrupting training" in ran_out_message(1, 0, None)


@pytest.mark.parametrize("bad, message", [
    ([(np.zeros((2, 3)), np.zeros(2)), (np.zeros((2, 4)), np.zeros(2))],
     r"epoch 1, batch 2: the generator returned rows of shape \(4,\), earlier batches had rows of shape \(3,\)"),
    ([(np.zeros((2, 3)), np.array([0, 7]))],
     r"epoch 1, batch 1: row 1 of the batch: label 7 is out of range; class labels must be 0..2"),
    ([(np.zeros((2, 3)), np.zeros(3))], r"x with 2 rows and y of shape \(3,\)"),
    ([(np.zeros((0, 3)), np.zeros(0))], r"returned an empty batch"),
    ([(np.zeros((2, 3)), np.zeros(2), np.ones(2))], r"does not support sample weights"),
    ([{"x": np.zeros((2, 3))}], r"returned dict .* a batch must be a tuple"),
    ([(np.zeros((2, 3)), np.zeros(2)), (np.zeros((2, 3)),)], r"without targets, earlier batches were with"),
    ([(np.full((2, 3), np.inf), np.zeros(2))], r"row 0 of the batch, column 0: x is inf"),
])
def test_bad_generator_batches_are_named(bad, message):
    src = StreamSource(_gen(bad))
    src.bind(Conversion("float32", num_classes=3, labels=True))
    with pytest.raises(DatasetError, match=message):
        for k in range(len(bad)):
            _fetch(src, k)


def test_an_empty_generator_and_a_raising_generator_are_clear():
    src = StreamSource(_gen([]))
    with pytest.raises(DatasetError, match="the generator yielded no batch: an empty source"):
        src.peek()
    with pytest.raises(DatasetError, match="iterating list yielded no batch"):
        StreamSource([]).peek()

    def broken():
        yield np.zeros((2, 3)), np.zeros(2)
        raise OSError("disk gone")
    src = StreamSource(broken())
    _fetch(src, 0)
    with pytest.raises(DatasetError, match="epoch 1, batch 2: the generator raised OSError: disk gone"):
        _fetch(src, 1)
    with pytest.raises(TypeError, match="expected a generator or an iterable"):
        StreamSource("abc")


def test_a_generator_cannot_go_to_worker_processes():
    import pickle
    with pytest.raises(TypeError, match="prefetched in a thread"):
        pickle.dumps(StreamSource(_gen(_batches(1))))


# ---------------------------------------------------------------------------- PyDataset
KERAS_DATASET = '''
import math
import numpy as np

class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        low = idx * self.batch_size
        high = min(low + self.batch_size, len(self.x))
        return self.x[low:high], self.y[low:high]

    def on_epoch_end(self):
        self.epochs_ended += 1

class Forgetful(keras.utils.PyDataset):
    def __init__(self):
        pass          # no super().__init__(): Keras warns and uses its defaults

    def __len__(self):
        return 1

    def __getitem__(self, idx):
        return np.zeros((2, 3)), np.zeros(2)

rng = np.random.default_rng(0)
x = rng.random((23, 5)).astype("float32")
y = rng.integers(0, 4, 23)
ds = Batches(x, y, 5, workers=3, use_multiprocessing=False, max_queue_size=4)
'''


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _run(module):
    scope = {"keras": module}
    exec(KERAS_DATASET, scope)
    return scope


def test_a_keras_pydataset_subclass_runs_unchanged_under_gradfit(keras):
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
    ours, theirs = _run(gradfit), _run(keras)
    assert keras.utils.PyDataset is not gradfit.utils.PyDataset
    for scope in (ours, theirs):
        ds = scope["ds"]
        assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (3, False, 4)
        assert ds.num_batches == 5 and len(list(iter(ds))) == 5
    keras_batches = list(PyDatasetAdapter(theirs["ds"], shuffle=False).get_numpy_iterator())
    for ds in (ours["ds"], theirs["ds"]):      # gradfit reads Keras's own class too
        src = as_source(ds)
        assert isinstance(src, PyDatasetSource) and src.unit == "batch" and src.steps() == 5
        assert src.prefetch == {"workers": 3, "processes": False, "depth": 4}
        src.bind(Conversion("float32", num_classes=4, labels=True))
        for i, (kx, ky) in enumerate(keras_batches):
            x, y = _fetch(src, i)
            assert np.array_equal(x, kx) and np.array_equal(y, ky)
        src.on_epoch_end()
        assert ds.epochs_ended == 1
    for scope, module in ((ours, gradfit), (theirs, keras)):
        with pytest.warns(UserWarning, match=r"should call `super\(\).__init__\(\*\*kwargs\)`"):
            assert scope["Forgetful"]().workers == 1


def test_shuffled_batch_order_comes_from_the_given_generator():
    scope = _run(gradfit)
    src = PyDatasetSource(scope["ds"])
    order = src.epoch_order(np.random.default_rng(3))
    assert np.array_equal(order, np.random.default_rng(3).permutation(5))
    assert np.array_equal(src.epoch_order(None, shuffle=False), np.arange(5))


class _Raises(PyDataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        if i == 2:
            raise KeyError("image 17 missing")
        return np.zeros((2, 3)), np.zeros(2)


class _Endless(PyDataset):
    num_batches = None

    def __getitem__(self, i):
        return np.full((2, 1), float(i)), np.zeros(2)


class _Empty(PyDataset):
    def __len__(self):
        return 0


def test_pydataset_errors_name_the_batch_and_index():
    src = PyDatasetSource(_Raises())
    _fetch(src, 0)
    with pytest.raises(DatasetError, match=r"epoch 1, batch 4: _Raises.__getitem__\(2\) raised "
                                           r"KeyError: 'image 17 missing'") as info:
        src.fetch(Request(0, 3, 2))
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(DatasetError, match=r"_Empty is empty \(__len__\(\) == 0\)"):
        PyDatasetSource(_Empty())

    class NoLength(PyDataset):
        def __getitem__(self, i):
            return np.zeros((1, 1))
    with pytest.raises(DatasetError, match="must implement __len__"):
        PyDatasetSource(NoLength())


def test_an_endless_pydataset_is_a_stream_indexed_by_position():
    src = PyDatasetSource(_Endless())
    assert src.unit == "stream" and src.steps() is None and src.steps(7) == 7
    x, _ = src.fetch(Request(2, 0, 41))            # random access: a resume costs nothing
    assert (x == 41).all()


def test_a_pydataset_with_workers_zero_reads_in_the_training_thread():
    class Sync(PyDataset):
        def __init__(self):
            super().__init__(workers=0)

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return np.zeros((1, 1)), np.zeros(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PyDatasetSource(Sync()).prefetch["workers"] == 0


def test_fit_trains_on_a_keras_pydataset_as_on_the_arrays_in_its_batches(keras):
    ours, theirs = _run(gradfit), _run(keras)

    def model():
        gradfit.set_random_seed(0)
        m = gradfit.Sequential([gradfit.Input(shape=(5,)), gradfit.Dense(7, activation="relu"),
                                gradfit.Dense(4, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return m
    want = model()
    want.fit(ours["x"], ours["y"], batch_size=5, epochs=2, shuffle=False, drop_remainder=False,
             verbose=0)
    for scope in (ours, theirs):          # gradfit's class, and Keras's own, through fit
        got = model()
        history = got.fit(scope["ds"], epochs=2, shuffle=False, verbose=0)
        assert np.array_equal(got.params, want.params)
        assert scope["ds"].epochs_ended == 2 and len(history.history["loss"]) == 2
