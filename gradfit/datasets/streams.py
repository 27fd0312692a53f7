"""Sources of whole batches: a `PyDataset` (Keras 3's contract) and Python generators or
iterables of ``(x, y)`` batches (``fit(gen, steps_per_epoch=...)``).

Both check every batch before it reaches the model: a tuple ``(x, y)`` (or ``(x,)`` / a bare
array for data without targets), ``x`` and ``y`` of equal length, rows of the same shape as
the first batch's, labels in range and values finite (`Conversion`). A batch that fails names
the epoch and batch, and the row in the batch.

Semantics of a stream (generator or iterable), as Keras 3's ``EpochIterator`` where it is
sound: the position in the stream is the loop's cursor (``Request.key``). A request for a
position behind the current one re-iterates the data (``iter(data)`` again: a list or a
PyDataset restarts; a one-shot generator stays exhausted); a request ahead of it skips
batches (a resumed run, given a fresh generator, skips what was already trained on). When the
data run out, `Exhausted` is raised: never a hang. Unlike Keras 3 no batch is ever replayed
from a peek (keras-team/keras#20402): `peek` keeps the batch for its own position only.
"""
from __future__ import annotations

import numpy as np

from .base import DatasetError
from .convert import Conversion, batch_row
from .sources import Exhausted, Request


class _BatchChecks:
    """Shared by both sources: unpack a batch, check its shapes, convert it."""

    row_shape = None        # rows of the first batch seen; later batches must match
    has_targets = None
    conversion = Conversion()

    def bind(self, conversion: Conversion) -> None:
        self.conversion = conversion

    def _check(self, batch, where: str):
        x, y = _unpack(batch, where, self._what)
        x = np.asarray(x)
        if x.ndim < 1 or len(x) == 0:
            raise DatasetError(f"{where}: {self._what} returned an empty batch (x of shape "
                               f"{x.shape}); every batch needs at least one row")
        if self.row_shape is None:
            self.row_shape, self.has_targets = tuple(x.shape[1:]), y is not None
        if tuple(x.shape[1:]) != self.row_shape:
            raise DatasetError(f"{where}: {self._what} returned rows of shape {tuple(x.shape[1:])}, "
                               f"earlier batches had rows of shape {self.row_shape}; every batch "
                               f"must have rows of one shape")
        if (y is not None) != self.has_targets:
            raise DatasetError(f"{where}: {self._what} returned a batch "
                               f"{'with' if y is not None else 'without'} targets, earlier batches "
                               f"were {'with' if self.has_targets else 'without'}")
        if y is not None:
            y = np.asarray(y)
            if y.ndim < 1 or len(y) != len(x):
                raise DatasetError(f"{where}: {self._what} returned x with {len(x)} rows and y of "
                                   f"shape {y.shape}; every row of x needs its target")
        x = self.conversion.x(x, batch_row, where)
        return x, None if y is None else self.conversion.y(y, batch_row, where)

    def describe(self) -> dict:
        return {"kind": self._kind, "type": self.type_name}

    def check_unchanged(self) -> None:
        """Python objects: nothing to watch."""

    def close(self) -> None:
        pass


def _unpack(batch, where, what):
    if isinstance(batch, np.ndarray):
        return batch, None
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, dict) or not isinstance(batch, tuple) or len(batch) not in (1, 2, 3):
        raise DatasetError(f"{where}: {what} returned {type(batch).__name__} "
                           f"{str(batch)[:60]!r}; a batch must be a tuple (x, y) or (x,)")
    if len(batch) == 3:
        raise DatasetError(f"{where}: {what} returned (x, y, sample_weight); gradfit does not "
                           f"support sample weights: return (x, y)")
    return batch[0], batch[1] if len(batch) == 2 else None


class PyDatasetSource(_BatchChecks):
    """A `PyDataset` (gradfit's, or any object with Keras's contract): ``unit == "batch"``
    when it has a length, ``"stream"`` (key = batch index) when ``num_batches`` is None.

    Batches are prepared ahead by the data set's own settings: ``workers`` threads, or
    processes with ``use_multiprocessing=True``, at most ``max_queue_size`` waiting
    (``workers=0``: read in the training thread)."""

    _kind = "pydataset"

    def __init__(self, dataset):
        try:
            n = dataset.num_batches
        except NotImplementedError as exc:
            raise DatasetError(str(exc)) from None
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
            raise DatasetError(f"{type(dataset).__name__} has {n!r} batches; __len__ must return "
                               f"the number of batches per epoch")
        if n == 0:
            raise DatasetError(f"{type(dataset).__name__} is empty (__len__() == 0); it needs at "
                               f"least one batch")
        self.dataset = dataset
        self.num_batches = None if n is None else int(n)
        self.unit = "batch" if n is not None else "stream"
        self._what = f"{type(dataset).__name__}.__getitem__"
        self.type_name = type(dataset).__name__
        workers = int(getattr(dataset, "workers", 1))
        self.prefetch = {"workers": max(workers, 0),
                         "processes": bool(getattr(dataset, "use_multiprocessing", False)),
                         "depth": max(int(getattr(dataset, "max_queue_size", 10)), 1)}

    def steps(self, steps_per_epoch=None):
        return steps_per_epoch or self.num_batches

    def epoch_order(self, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
        n = self.num_batches
        return rng.permutation(n) if shuffle else np.arange(n)

    def fetch(self, request: Request):
        i = int(request.key)
        try:
            batch = self.dataset[i]
        except Exception as exc:
            raise DatasetError(f"{request.where}: {self.type_name}.__getitem__({i}) raised "
                               f"{type(exc).__name__}: {exc}") from exc
        return self._check(batch, f"{request.where} ({self.type_name}[{i}])")

    def peek(self):
        return self.fetch(Request(0, 0, 0))

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()


class StreamSource(_BatchChecks):
    """A Python generator, iterator or iterable of ``(x, y)`` batches: ``unit == "stream"``.

    Prefetch runs in one thread (a generator must be advanced in order, by one thread)."""

    unit = "stream"
    _kind = "stream"

    def __init__(self, data):
        if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
            raise TypeError(f"expected a generator or an iterable of (x, y) batches, got "
                            f"{type(data).__name__}")
        self.data = data
        self._what = "the generator" if iter(data) is data else f"iterating {type(data).__name__}"
        self.type_name = type(data).__name__
        self._it = None
        self._pos = 0            # batches drawn from the current iteration
        self._peeked = None      # (position, batch) read by peek, not yet consumed
        self.prefetch = {"workers": 1, "processes": False, "depth": 2}

    @property
    def one_shot(self) -> bool:
        """A generator or iterator: iterating it again does not start over."""
        return iter(self.data) is self.data

    def steps(self, steps_per_epoch=None):
        if steps_per_epoch:
            return steps_per_epoch
        return len(self.data) if hasattr(self.data, "__len__") else None

    def fetch(self, request: Request):
        key = int(request.key)
        if self._it is None or key < self._pos:
            self._restart()
        batch = self._take(key, request.where)
        return self._check(batch, request.where)

    def peek(self):
        """The batch at the current position (the first one, before training), kept for the
        fetch of that position; an empty stream is an error here, before any work."""
        if self._it is None:
            self._restart()
        if self._peeked is None or self._peeked[0] != self._pos:
            try:
                self._peeked = (self._pos, self._next(Request(0, self._pos, self._pos).where))
            except Exhausted:
                if self._pos:
                    raise
                raise DatasetError(f"{self._what} yielded no batch: an empty source has nothing "
                                   f"to train on") from None
        return self._check(self._peeked[1], "the first batch")

    def __getstate__(self):
        raise TypeError("a generator cannot be sent to worker processes; streams are "
                        "prefetched in a thread")

    # -- moving in the stream -------------------------------------------------------------------
    def _restart(self):
        self._it, self._pos, self._peeked = iter(self.data), 0, None

    def _take(self, key, where):
        while self._pos < key:                       # a resumed run: skip what was trained on
            self._consume(where)
        return self._consume(where)

    def _consume(self, where):
        if self._peeked is not None and self._peeked[0] == self._pos:
            batch = self._peeked[1]
            self._peeked = None
        else:
            batch = self._next(where)
        self._pos += 1
        return batch

    def _next(self, where):
        try:
            return next(self._it)
        except StopIteration:
            raise Exhausted(f"{where}: {self._what} ran out of data after {self._pos} "
                            f"batches") from None
        except Exception as exc:
            raise DatasetError(f"{where}: {self._what} raised {type(exc).__name__}: {exc}") from exc
