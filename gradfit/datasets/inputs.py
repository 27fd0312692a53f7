"""`as_source`: the batch source for whatever ``fit`` / ``evaluate`` / ``predict`` were given
(Keras's ``get_data_adapter``), so the loop sees one protocol (`gradfit.datasets.sources`).

=================================================  ===================  =======================
input                                              source               epoch order
=================================================  ===================  =======================
numpy array, list, ``np.memmap``, ``np.load(...,   `ArraySource`        permutation of the rows
mmap_mode="r")``, a ``.npy`` path
a packed directory (path or ``datasets.open``)     `PackedSource`       permutation of the rows,
                                                                        or the block shuffle
`PyDataset` (gradfit's or Keras's) with a length   `PyDatasetSource`    permutation of batches
an endless `PyDataset`, a generator, an iterable   `PyDatasetSource` /  the stream's own
(a list) of (x, y) batches                         `StreamSource`
a source already                                   itself
=================================================  ===================  =======================
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import DatasetError
from .packed import PackedSource
from .packed_format import INDEX
from .pydataset import PyDataset
from .sources import ArraySource
from .streams import PyDatasetSource, StreamSource


def is_source(obj) -> bool:
    return hasattr(obj, "fetch") and getattr(obj, "unit", None) in ("row", "batch", "stream")


def is_pydataset(obj) -> bool:
    """gradfit's PyDataset, or an object with Keras's contract (keras.utils.PyDataset)."""
    if isinstance(obj, PyDataset):
        return True
    cls = type(obj)
    return all(hasattr(cls, name) for name in ("__getitem__", "on_epoch_end", "use_multiprocessing"))


def as_source(x, y=None, *, name: str = "x"):
    """The source of rows or batches for ``x`` (and ``y``; see the table above).

    ``y`` goes with arrays only: a PyDataset, a generator or a packed directory holds its own
    targets (as in Keras, passing ``y`` with them is an error)."""
    if is_source(x) or is_pydataset(x) or _is_stream(x):
        if y is not None:
            raise ValueError(f"y must not be given when x is a {type(x).__name__}: it yields "
                             f"(x, y) batches itself")
    if is_source(x):
        return x
    if isinstance(x, (str, os.PathLike)):
        return _from_path(Path(x), y, name)
    if is_pydataset(x):
        return PyDatasetSource(x)
    if _is_stream(x):
        return StreamSource(x)
    if isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "__array__"):
        if isinstance(y, (str, os.PathLike)):
            y = np.load(y, mmap_mode="r")
        return ArraySource(x, y, name=name)
    raise TypeError(f"cannot train on {name} of type {type(x).__name__}; pass a numpy array (or "
                    f"memmap), a .npy path, a packed directory, a PyDataset, or a generator of "
                    f"(x, y) batches")


def _is_stream(x) -> bool:
    if isinstance(x, list) and x and isinstance(x[0], tuple):   # a list of (x, y) batches
        return True
    return (hasattr(x, "__iter__") and not isinstance(x, (str, bytes, dict, list, tuple, np.ndarray))
            and not hasattr(x, "__array__") and not is_source(x) and not is_pydataset(x))


def _from_path(path: Path, y, name):
    path = path.expanduser()
    if path.is_dir():
        if y is not None:
            raise ValueError(f"y must not be given with the packed directory {path}: it holds "
                             f"its own targets")
        return PackedSource(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        x = np.load(path, mmap_mode="r")
        if isinstance(y, (str, os.PathLike)):
            y = np.load(Path(y).expanduser(), mmap_mode="r")
        return ArraySource(x, y, name=path.name)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; give a packed directory (holding "
                                f"{INDEX}) or a .npy file")
    raise DatasetError(f"{path}: give a packed directory (holding {INDEX}) or a .npy file; pack "
                       f"other files first with `gradfit data pack {path} DIR`")
