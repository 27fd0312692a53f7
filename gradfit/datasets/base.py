"""The dataset record, the dataset error, and label helpers.

Conventions shared by every loader in ``gradfit.datasets``:

* features ``x`` are ``float32`` of shape ``(n, d)`` (images flattened) unless a loader is
  asked otherwise;
* class labels ``y`` are ``int64`` of shape ``(n,)`` with values in ``0 .. num_classes-1``
  (``int64`` rather than IDX's ``uint8`` so that arithmetic such as ``y - 1`` cannot wrap);
* regression targets are ``float32`` and the dataset's ``num_classes`` is ``None``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import SpelledError


class DatasetError(SpelledError):
    """A dataset that cannot be read: missing offline, corrupt, wrong checksum, bad values.

    The message names the file (and folder) concerned and what to do about it; a ``fix`` that
    names arguments writes them ``{x_key}`` (`gradfit.checks.SpelledError`), so that the
    command line says ``--x-key``.
    """


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair of arrays, unpackable like Keras's ``load_data()``.

    ``(x_train, y_train), (x_test, y_test) = gradfit.datasets.mnist()`` works, and so do
    the attributes ``ds.x_train`` ... ``ds.y_test``, ``ds.num_classes``, ``ds.name`` and
    ``ds.class_names`` (a tuple of strings or ``None``).

    Shapes: ``x_train (n_train, *feature_shape)``, ``y_train (n_train,)`` (or
    ``(n_train, k)`` for one-hot / multi-output targets), likewise for the test pair.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    name: str
    class_names: tuple[str, ...] | None = None
    #: where each example came from, for messages: (rows of the train part, rows of the test
    #: part) in the source, e.g. the rows of one .npz / .csv file that was split; None: the
    #: arrays' own row numbers are the source's (MNIST's separate train and test files)
    source_rows: tuple | None = None
    source: str | None = None      # the file that was split, for messages

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_test, self.y_test

    def __iter__(self):
        # Keras-style unpacking: (x_train, y_train), (x_test, y_test) = ds
        return iter((self.train, self.test))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.train, self.test)[i]

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, x_train={self.x_train.shape} {self.x_train.dtype}, "
                f"y_train={self.y_train.shape} {self.y_train.dtype}, x_test={self.x_test.shape}, "
                f"y_test={self.y_test.shape}, num_classes={self.num_classes})")


def check_labels(y, num_classes: int | None = None, what: str = "y") -> np.ndarray:
    """Validate integer class labels and return them as a 1-D ``int64`` array.

    Accepts any integer array, or a float array whose values are all whole numbers
    (as read from a CSV).  With ``num_classes`` given, every label must lie in
    ``0 .. num_classes-1``; the error names the first offending value and its index.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of class labels, got shape {y.shape}")
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise TypeError(f"{what} must hold integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{what}[{i}] = {y[i].item()!r} is not a whole number: class labels must be "
                             f"integers 0..num_classes-1")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        i = int(np.argmin(y))
        raise ValueError(f"{what}[{i}] = {y[i]} is negative: class labels must be 0..num_classes-1")
    if num_classes is not None:
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if y.size and y.max() >= num_classes:
            i = int(np.argmax(y))
            raise ValueError(f"{what}[{i}] = {y[i]} is out of range for num_classes={num_classes}: "
                             f"labels must be 0..{num_classes - 1}")
    return y


def one_hot(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """One-hot encode integer labels: ``Y[i, y[i]] = 1``, every other entry 0.

    ``y`` has shape ``(n,)``; the result has shape ``(n, num_classes)``.  ``num_classes``
    defaults to ``max(y) + 1`` (as ``keras.utils.to_categorical``).
    """
    y = check_labels(y, num_classes)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    out = np.zeros((y.shape[0], int(num_classes)), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


def as_labels_or_targets(y: np.ndarray, what: str = "y") -> tuple[np.ndarray, int | None]:
    """Labels (``int64``, with ``num_classes = max + 1``) if every value of a 1-D ``y`` is a
    non-negative whole number; otherwise ``float32`` regression targets with ``None``.

    A 2-D ``y`` of 0/1 rows with a single 1 each is taken as one-hot (``num_classes`` = its
    width); any other 2-D ``y`` as multi-output regression targets.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {y.dtype}")
    check_finite(y, what)
    if y.dtype.kind == "b":
        y = y.astype(np.uint8)
    if y.ndim == 1 and y.size and (y == np.round(y)).all() and y.min() >= 0:
        y = y.astype(np.int64)
        return y, int(y.max()) + 1
    if y.ndim == 2 and y.size and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        return y.astype(np.float32), int(y.shape[1])
    return y.astype(np.float32), None


def check_finite(a: np.ndarray, what: str) -> None:
    """Raise ``DatasetError`` naming the first NaN/inf entry of a float array."""
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(~np.isfinite(a))), a.shape))
        raise DatasetError(f"{what}{list(idx)} = {a[idx].item()!r}: the data contain NaN or inf; "
                           f"remove or impute those entries before training")
