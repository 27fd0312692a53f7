"""Datasets: ``digits`` (offline), ``mnist``, ``fashion_mnist``, user ``.npz``/``.csv`` files,
splits that never overlap, and batch sources for data that does not fit in memory.

Every named dataset returns a :class:`Dataset`, unpackable like Keras's ``load_data()``::

    (x_train, y_train), (x_test, y_test) = gradfit.datasets.mnist()
    ds = gradfit.datasets.load("digits"); ds.num_classes, ds.name

Images are float32 in ``[0, 1]``, flattened; labels int64.  MNIST files are looked for in
``$GRADFIT_DATA/mnist/`` (else ``~/.cache/gradfit/mnist/``), downloaded when missing and
checked against their published SHA-256 (see ``cache.py``).

Out-of-core data: ``gradfit.datasets.open(DIR)`` opens a directory written by
``gradfit data pack`` / `pack` (``packed.py``); `as_source` turns arrays, memmaps, a
`PyDataset` or a generator into a batch source (the protocol: ``sources.py``), and
`Prefetcher` prepares the next batches in the background (``prefetch.py``). ``fit``,
``evaluate`` and ``predict`` take any of them (`gradfit.train.feed`).

This package imports nothing from the rest of gradfit but the leaf ``gradfit.checks``
(``gradfit.utils`` re-exports `PyDataset` from it; a test checks the rule).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset, DatasetError, as_labels_or_targets, check_labels, one_hot
from .builtin import FASHION_CLASSES, digits, fashion_mnist, mnist
from .cache import REMOTES, data_home, fetch
from .convert import Conversion
from .files import load_csv, load_npz
from .inputs import as_source, is_pydataset, is_source
from .pack import pack, pack_chunks, pack_file
from .packed import PackedSource
from .packed import open_packed as open  # noqa: A001  (gradfit.datasets.open(DIR), not builtins.open)
from .packed_format import read_index
from .prefetch import Prefetcher
from .pydataset import PyDataset
from .shuffle import block_order
from .sources import ArraySource, Exhausted, Request, Rows, check_same_source
from .split import split_indices, train_val_test_split
from .streams import PyDatasetSource, StreamSource

# "open" is left out of __all__ so that `from gradfit.datasets import *` never hides the builtin
__all__ = [
    "ArraySource", "Conversion", "Dataset", "DatasetError", "Exhausted", "NAMES", "PackedSource",
    "Prefetcher", "PyDataset", "PyDatasetSource", "REMOTES", "Request", "Rows", "StreamSource",
    "as_source", "block_order", "check_labels", "check_same_source", "data_home", "digits",
    "fashion_mnist", "FASHION_CLASSES", "fetch", "is_pydataset", "is_source", "load", "load_csv",
    "load_npz", "mnist", "one_hot", "pack", "pack_chunks", "pack_file", "read_index",
    "split_indices", "train_val_test_split",
]

NAMES = {"digits": digits, "mnist": mnist, "fashion-mnist": fashion_mnist}


def load(name_or_path, *, test_fraction: float = 0.2, seed=0, data_dir=None,
         download: bool = True, flatten: bool = True, **file_options) -> Dataset:
    """The dataset named ``"digits"``, ``"mnist"`` or ``"fashion-mnist"``, or read from a
    ``.npz`` / ``.csv`` file (the entry point of ``gradfit train --data``).

    A file that holds ``x_train, y_train, x_test, y_test`` (Keras's ``mnist.npz`` layout)
    keeps its own test set; any other file (``x``, ``y`` or a CSV) is split with
    ``test_fraction`` by ``seed``, stratified when its targets are class labels.
    ``file_options`` go to :func:`load_npz` (``x_key``, ``y_key``) or :func:`load_csv`
    (``label_column``, ``header``, ``delimiter``).  ``flatten`` reshapes file features to
    ``(n, features)``.
    """
    name = str(name_or_path)
    key = name.lower().replace("_", "-")
    if key in NAMES:
        if key == "digits":
            return digits(test_fraction=test_fraction, seed=seed, flatten=flatten)
        return NAMES[key](data_dir=data_dir, download=download, flatten=flatten)
    suffix = Path(name).suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(NAMES)}, "
                         f"or give the path of a .npz or .csv file")
    stem = Path(name).stem
    if suffix == ".npz":
        try:
            with np.load(Path(name).expanduser(), allow_pickle=False) as f:
                keys = set(f.keys())
        except (OSError, ValueError):
            keys = set()  # load_npz below raises the explanatory error
        if {"x_train", "y_train", "x_test", "y_test"} <= keys and not file_options:
            x_tr, y_tr = load_npz(name, "x_train", "y_train")
            x_te, y_te = load_npz(name, "x_test", "y_test")
            return _dataset(x_tr, y_tr, x_te, y_te, stem, flatten)
        x, y = load_npz(name, **file_options)
    else:
        x, y = load_csv(name, **file_options)
    if y is None:
        raise DatasetError(f"{name}: no targets loaded; training needs a label column / y array")
    _, num_classes = as_labels_or_targets(y)
    labels = y if num_classes is not None and y.ndim == 1 else None
    train, _, test = split_indices(x.shape[0], 0.0, test_fraction, seed, stratify=labels)
    return _dataset(x[train], y[train], x[test], y[test], stem, flatten,
                    source_rows=(train, test), source=name)


def _dataset(x_tr, y_tr, x_te, y_te, name, flatten, source_rows=None, source=None) -> Dataset:
    if flatten:
        x_tr, x_te = x_tr.reshape(x_tr.shape[0], -1), x_te.reshape(x_te.shape[0], -1)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(f"{name}: train features {x_tr.shape[1:]} and test features "
                           f"{x_te.shape[1:]} differ")
    k = [as_labels_or_targets(y)[1] for y in (y_tr, y_te)]
    num_classes = None if None in k else max(k)
    return Dataset(x_tr, y_tr, x_te, y_te, num_classes, name, source_rows=source_rows,
                   source=source)
