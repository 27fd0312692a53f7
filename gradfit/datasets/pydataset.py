"""``keras.utils.PyDataset``: a data set written as Python code, one batch per index.

The contract is Keras 3's (``keras/src/trainers/data_adapters/py_dataset_adapter.py``), so that
a subclass written for Keras runs unchanged after ``import gradfit as keras``:

* ``__len__()`` (or the property ``num_batches``) is the number of batches per epoch;
  ``num_batches = None`` means an endless data set (``fit`` then needs ``steps_per_epoch``).
* ``__getitem__(i)`` returns batch ``i`` as ``(x, y)`` (or ``(x,)`` / a bare ``x`` for
  ``predict``); batches may differ in size (the last one is often smaller).
* ``on_epoch_begin()`` / ``on_epoch_end()`` are called around every epoch.
* ``workers``, ``use_multiprocessing`` and ``max_queue_size`` (constructor keywords, passed
  on by ``super().__init__(**kwargs)``) say how ``fit`` prepares batches ahead: ``workers``
  threads (or worker processes with ``use_multiprocessing=True``) and at most
  ``max_queue_size`` batches waiting. A subclass that forgets ``super().__init__`` gets
  Keras's defaults and Keras's warning.

How gradfit reads one (`gradfit.datasets.streams.PyDatasetSource`): with ``shuffle=True`` the
batch order of each epoch is a permutation drawn from gradfit's one random generator (Keras
shuffles with Python's ``random``), so a run is reproducible from ``set_random_seed`` and a
resumed run reads the same batches.

This module imports nothing from gradfit, so that `gradfit.utils` can re-export the class.
"""
from __future__ import annotations

import itertools
import warnings


class PyDataset:
    """Base class of a data set that returns whole batches by index (Keras 3's contract).

    Example, as in Keras's documentation::

        class Batches(keras.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, i):
                s = slice(i * self.batch_size, (i + 1) * self.batch_size)
                return self.x[s], self.y[s]

        model.fit(Batches(x, y, 64, workers=2), epochs=10)
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        missing = [name for name in ("_workers", "_use_multiprocessing", "_max_queue_size")
                   if not hasattr(self, name)]
        if not missing:
            return
        self._workers = getattr(self, "_workers", 1)
        self._use_multiprocessing = getattr(self, "_use_multiprocessing", False)
        self._max_queue_size = getattr(self, "_max_queue_size", 10)
        warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its "
                      "constructor. `**kwargs` can include `workers`, `use_multiprocessing`, "
                      "`max_queue_size`. Do not pass these arguments to `fit()`, as they will "
                      "be ignored.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """Batch number ``index``: ``(x, y)``, ``(x,)`` or ``x``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index), "
                                  "returning the batch (x, y) number index")

    @property
    def num_batches(self):
        """Batches per epoch (``len(self)``), or None for an endless data set."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (batches per "
                                  "epoch) or the property num_batches (None if endless)")

    def __iter__(self):
        """Batches 0, 1, ... in order, without parallelism (as Keras)."""
        try:
            n = self.num_batches
        except NotImplementedError:
            n = None
        for i in (range(n) if n is not None else itertools.count()):
            yield self[i]

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch (e.g. to reshuffle the data set's own order)."""


# Keras 3 keeps the Keras 2 name as an alias.
Sequence = PyDataset
