"""The data of ``gradfit train``: in memory, or streamed from disk, as one record for the run.

* In memory (``--data digits|mnist|fashion-mnist|FILE.npz|FILE.csv``): the arrays of
  `gradfit.datasets.load` (a file without its own test set is split 80/20 by
  ``--split-seed``), then ``--val-fraction`` of the training part by ``--seed``.
* On disk (``--data PACKED_DIR``, written by ``gradfit data pack``, or ``--data x.npy
  --labels y.npy``): a source that ``fit`` reads batch by batch (`gradfit.datasets`), under
  MPI each rank only its share; the features are never loaded whole. Only the targets are read
  into memory, in their stored dtype (1 byte per row for uint8 labels) and chunk by chunk from a
  packed directory: they decide the task and the split as for a file (the same rules, the same
  messages). The split keeps the row ids of each part (8 bytes per row; the stratified cut's
  sort arrays take about 90 bytes per row for a moment: benchmarks/stream_split_memory.py):
  20% of the rows for the test set by
  ``--split-seed``, then ``--val-fraction`` of the rest by ``--seed``, stratified by class.
  A packed directory's shards are checked against their SHA-256 once, on rank 0, before
  anything is printed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import ArgumentError
from ..datasets import Request, as_source, split_indices, train_val_test_split
from ..datasets.packed_format import INDEX
from ..datasets.task import decide_task

#: the held-out test share of data without a test set of its own (as `gradfit.datasets.load`)
TEST_FRACTION = 0.2


@dataclass
class TrainData:
    """What the run trains, validates and tests on: ``train`` and ``test`` are ``(x, y)`` as
    ``fit`` / ``evaluate`` take them (arrays, or a source and None), ``val`` is
    ``validation_data``; ``rows`` the (train, validation, test) counts."""

    name: str
    train: tuple
    val: tuple | None
    test: tuple
    rows: tuple
    row_shape: tuple
    streamed: bool

    @property
    def width(self) -> int:
        return math.prod(self.row_shape)

    def probe(self, rows: int = 256):
        """A few training inputs as an array (is the trained model's output finite?)."""
        x = self.train[0]
        if not self.streamed:
            return x[:rows]
        return x.fetch(Request(0, 0, slice(0, min(rows, len(x))), "probe"))[0]


def on_disk(data: str) -> bool:
    """Whether ``--data`` names data to stream: a packed directory or a ``.npy`` file."""
    path = Path(data).expanduser()
    return (path / INDEX).is_file() or path.suffix.lower() == ".npy"


def in_memory(args, ds, task) -> TrainData:
    """The arrays of a loaded `Dataset`, the validation part cut from the training part."""
    (x_tr, y_tr), (x_val, y_val), _ = train_val_test_split(
        ds.x_train, ds.y_train, val_fraction=args.val_fraction, seed=args.seed,
        stratify=task.kind == "classification" and ds.y_train.ndim == 1)
    val = (x_val, y_val) if len(x_val) else None
    return TrainData(ds.name, (x_tr, y_tr), val, (ds.x_test, ds.y_test),
                     (len(x_tr), len(x_val), len(ds.x_test)), tuple(x_tr.shape[1:]), False)


def open_on_disk(args):
    """(the source of ``--data``, every row's target in its stored dtype); nothing verified yet
    (`verify`)."""
    path = Path(args.data).expanduser()
    labels = getattr(args, "labels", None)
    if (path / INDEX).is_file():
        if labels is not None:
            raise ArgumentError("labels", labels, "unset with a packed directory",
                                "its targets are packed with it: drop {labels}")
        source = as_source(str(path))               # opened without hashing: see verify
    else:
        if labels is None:
            raise ArgumentError("labels", None, "a .npy file of targets with --data x.npy",
                                f"give {{labels}} y.npy (one target per row of {path.name}), or "
                                "pack both with `gradfit data pack`")
        source = as_source(str(path), os.fspath(Path(labels).expanduser()))
    if not source.has_targets:
        raise ArgumentError("data", args.data, "data with targets", "pack the labels with the "
                            "features (gradfit data pack SRC OUT --labels ...)")
    return source, np.asarray(source.targets())


def verify(source) -> None:
    """A packed directory's shards against the SHA-256 of its index (about a second per GB)."""
    if hasattr(source, "verify"):
        source.verify()


def split_on_disk(args, source, y):
    """(task, `TrainData`) of streamed data: the task decided from the targets, the rows split
    into train / validation / test as a file's are (see the module docstring)."""
    name = Path(args.data).name
    labels = y if y.ndim == 1 and y.dtype.kind in "iu" else None
    rest, _, test = split_indices(len(y), 0.0, TEST_FRACTION, args.split_seed, stratify=labels)
    task = decide_task(y[rest], y[test], args.task, args.num_classes, (rest, test), name)
    classes = labels[rest] if labels is not None and task.kind == "classification" else None
    train, val, _ = split_indices(len(rest), args.val_fraction, 0.0, args.seed, stratify=classes)
    train, val = rest[train], rest[val]
    data = TrainData(name, (source.subset(train), None), source.subset(val) if len(val) else None,
                     (source.subset(test), None), (len(train), len(val), len(test)),
                     tuple(source.row_shape), True)
    return task, data
