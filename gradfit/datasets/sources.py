"""Batch sources: what the training loop asks for the rows of step k.

The loop owns the epoch plan; a source only hands over the rows it is asked for. For
random-access data the plan is the lecture's: a permutation of all rows drawn from gradfit's
one random generator, cut into disjoint equal global batches, each global batch cut into one
contiguous slice per MPI rank. The global batch never depends on the number of ranks, so the
cursor ``(epoch, rows of the epoch consumed, RNG state at the epoch start)`` resumes a run
bit-identically on any number of ranks.

The protocol (small on purpose). Every source has

    source.unit               "row" | "batch" | "stream": what the loop's plan counts
    source.bind(conversion)   the model's `Conversion` (dtype, class count), before reading
    source.fetch(request)     (x, y) for ``Request(epoch, step, key)``, converted to the model
                              dtype and checked (errors name the file row, shard and batch);
                              y is None for data without targets
    source.peek()             a first batch (x, y) to build the model from; nothing is lost
    source.describe()         JSON-able identity, kept in the backup (`check_same_source`)
    source.check_unchanged()  raise if files under the source changed (call at epoch starts)
    source.prefetch           dict(workers=, processes=, depth=) for `Prefetcher`
    source.close()

``unit == "row"`` (arrays, memmaps, ``.npy``, packed shards): random access by row.
    ``len(source)`` rows; ``source.epoch_order(rng, shuffle)`` this epoch's order of the rows
    (a permutation of ``range(len)``; a packed source may offer a block shuffle);
    ``request.key`` is an int64 array: the row ids of THIS rank's slice of step k;
    ``source.take(lo, hi)`` a source over rows ``[lo, hi)``, without a copy (validation_split).
``unit == "batch"`` (a finite `PyDataset`): random access by batch.
    ``source.num_batches``; ``source.epoch_order(rng, shuffle)`` a permutation of the batch
    indices; ``request.key`` a batch index; fetch returns the whole batch and the loop takes
    this rank's rows of it. A PyDataset source (either unit) has ``on_epoch_begin()`` /
    ``on_epoch_end()``, for the loop to call around each epoch.
``unit == "stream"`` (generators, iterables, an endless `PyDataset`): no random access.
    ``source.steps(steps_per_epoch)`` batches per epoch or None; ``request.key`` is the
    position in the stream (batches drawn before this one): the source re-iterates when the
    key goes back and skips ahead when it jumps (a resumed run); fetch raises `Exhausted` when
    the data ran out (`ran_out_message` says what the loop does then). Keras's semantics: with
    ``steps_per_epoch`` the stream continues across epochs, without it every epoch iterates
    afresh (the loop resets the position to 0).

Row and batch sources are picklable: worker processes get a copy (files are reopened there).
A stream is read in order by one prefetch thread.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import check_int
from .base import DatasetError
from .convert import Conversion


@dataclass(frozen=True)
class Request:
    """One fetch: ``key`` (row ids, a batch index or a stream position) for step ``step`` of
    epoch ``epoch`` (both 0-based; messages print them 1-based)."""

    epoch: int
    step: int
    key: object

    @property
    def where(self) -> str:
        return f"epoch {self.epoch + 1}, batch {self.step + 1}"


class Exhausted(Exception):
    """A stream ran out of data (the loop ends the epoch with Keras's warning)."""


def ran_out_message(epoch: int, steps_done: int, steps_per_epoch=None) -> str:
    """Keras's warning when a stream runs out, saying what happens next.

    The loop warns when a stream runs out before ``steps_per_epoch`` batches (the epoch ends
    there; the next epoch iterates the data again) and when an epoch gets no batch at all
    (training stops: a one-shot generator was used up). A stream without ``steps_per_epoch``
    that runs out after some batches has simply finished its epoch: no warning."""
    advice = ("Make sure that your generator can generate at least `steps_per_epoch * epochs` "
              "batches (loop forever: `while True:`), or pass an iterable that restarts (a list, "
              "a PyDataset)")
    if steps_done == 0:
        return (f"Your input ran out of data: epoch {epoch + 1} got no batch; interrupting "
                f"training. {advice}")
    return (f"Your input ran out of data at epoch {epoch + 1} after {steps_done} of "
            f"{steps_per_epoch} batches; the epoch ends here and the next one iterates the data "
            f"again. {advice}")


class ArraySource:
    """Rows of in-memory arrays or memory-mapped files, read and converted per batch.

    ``x``: any numeric array of shape ``(n, *row_shape)``: a numpy array, an ``np.memmap`` or
    ``np.load(path, mmap_mode="r")``. Nothing is copied: each fetch gathers its rows in the
    stored dtype and converts only them. ``y``: ``(n, ...)`` targets or None (predict).
    """

    unit = "row"

    def __init__(self, x, y=None, *, name: str = "x", workers: int = 1, depth: int = 2):
        self.x = _as_array(x, name)
        self.y = None if y is None else _as_array(y, "y")
        self.name = _file_name(self.x) or name
        if len(self.x) == 0:
            raise DatasetError(f"{self.name} holds no rows (shape {self.x.shape}); pass at least "
                               f"one example")
        if self.y is not None and len(self.y) != len(self.x):
            raise DatasetError(f"x and y have different lengths: {len(self.x)} and {len(self.y)}; "
                               f"every row of x needs its target")
        self.conversion = Conversion()
        self.prefetch = {"workers": workers, "processes": False, "depth": depth}
        self.rows_read = 0
        self.offset = 0           # the first row's number in the file (after `take`)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def row_shape(self) -> tuple:
        return tuple(self.x.shape[1:])

    def bind(self, conversion: Conversion) -> None:
        self.conversion = conversion

    def take(self, lo: int, hi: int) -> "ArraySource":
        """A source over rows ``[lo, hi)`` (views, no copy: Keras's validation_split)."""
        check_range(lo, hi, len(self))
        part = ArraySource(self.x[lo:hi], None if self.y is None else self.y[lo:hi],
                           name=self.name, workers=self.prefetch["workers"],
                           depth=self.prefetch["depth"])
        part.conversion, part.offset = self.conversion, self.offset + lo
        return part

    def epoch_order(self, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
        """The lecture's order: a fresh permutation of every row (``arange`` without shuffle)."""
        return rng.permutation(len(self)) if shuffle else np.arange(len(self))

    def fetch(self, request: Request):
        rows = np.asarray(request.key, dtype=np.int64)
        self.rows_read += len(rows)

        def origin(i):
            return f"{self.name} row {int(rows[i]) + self.offset}"
        x = self.conversion.x(self.x[rows], origin, request.where)
        y = None if self.y is None else self.conversion.y(self.y[rows], origin, request.where)
        return x, y

    def peek(self):
        return self.fetch(Request(0, 0, np.arange(min(len(self), 2))))

    def describe(self) -> dict:
        return {"kind": "arrays", "rows": len(self), "x": _spec(self.x),
                "y": None if self.y is None else _spec(self.y), "file": _file_name(self.x),
                "offset": self.offset}

    def check_unchanged(self) -> None:
        """In-memory data cannot change under us; a memmap's file is the caller's to keep."""

    def close(self) -> None:
        pass


def check_range(lo, hi, n: int) -> None:
    """``0 <= lo < hi <= n``: a non-empty range of a source's ``n`` rows (`take`)."""
    lo = check_int("lo", lo, 0, n - 1, owner="take")
    check_int("hi", hi, lo + 1, n, owner="take")


def check_same_source(saved: dict | None, now: dict) -> None:
    """Refuse to resume a run over data other than what its backup was written for.

    Compares the identities of `describe` (the path of a packed directory may change: the
    index's SHA-256 identifies the data)."""
    if saved is None:
        return
    keys = set(saved) | set(now)
    ignore = {"path", "file"}
    diff = sorted(k for k in keys - ignore if saved.get(k) != now.get(k))
    if diff:
        details = "; ".join(f"{k}: backup {saved.get(k)!r}, now {now.get(k)!r}" for k in diff)
        raise DatasetError(f"the backup was written for other data ({details}); resume with the "
                           f"same data, or delete the backup to start afresh")


def _as_array(a, name):
    if isinstance(a, np.ndarray):
        arr = a
    elif hasattr(a, "__array__") or isinstance(a, (list, tuple)):
        arr = np.asarray(a)
    else:
        raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    if arr.dtype.kind not in "biuf":
        raise DatasetError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise DatasetError(f"{name} must be an array of rows, got the scalar {arr.item()!r}")
    return arr


def _file_name(a) -> str | None:
    """The file behind a memmap (np.memmap or np.load(..., mmap_mode=...)), if any."""
    name = getattr(a, "filename", None)
    return os.fspath(Path(name).name) if name else None


def _spec(a) -> list:
    return [list(a.shape[1:]), a.dtype.str]
