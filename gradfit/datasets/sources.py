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
    ``len(source)`` rows; ``source.row_shape``; ``source.epoch_order(rng, shuffle)`` this
    epoch's order of the rows (a permutation of ``range(len)``; a packed source may offer a
    block shuffle); ``request.key`` is an int64 array: the row ids of THIS rank's slice of
    step k (or a ``slice`` of consecutive rows: evaluation and predict read ranges);
    ``source.take(lo, hi)`` a source over rows ``[lo, hi)``, without a copy (validation_split);
    ``source.subset(rows)`` a source over the given rows (a random split, `Rows`).
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

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import check_int
from .base import DatasetError
from .convert import Conversion


@dataclass(frozen=True)
class Request:
    """One fetch: ``key`` (row ids or a slice of rows, a batch index or a stream position)
    for step ``step`` of epoch ``epoch`` (both 0-based; messages print them 1-based).
    ``label`` names a fetch outside training ("validation after epoch 3, batch 2")."""

    epoch: int
    step: int
    key: object
    label: str | None = None

    @property
    def where(self) -> str:
        return self.label or f"epoch {self.epoch + 1}, batch {self.step + 1}"


class Exhausted(Exception):
    """A stream ran out of data (the loop ends the epoch with Keras's warning)."""


def ran_out_message(epoch: int, steps_done: int, steps_per_epoch=None, rows: bool = False) -> str:
    """Keras's warning when a stream runs out, saying what happens next.

    The loop warns when a stream runs out before ``steps_per_epoch`` batches (the epoch ends
    there; the next epoch iterates the data again) and when an epoch gets no batch at all
    (training stops: a one-shot generator was used up). A stream without ``steps_per_epoch``
    that runs out after some batches has simply finished its epoch: no warning."""
    advice = ("Make sure that your generator can generate at least `steps_per_epoch * epochs` "
              "batches (loop forever: `while True:`), or pass an iterable that restarts (a list, "
              "a PyDataset)")
    if rows:      # random-access data: the pass over the data ended before the epoch
        return (f"Your input ran out of data at epoch {epoch + 1} after {steps_done} of "
                f"{steps_per_epoch} batches: the pass over the data ended; the epoch ends here "
                f"and the next one starts a new pass (steps_per_epoch is meant to cut a pass "
                f"into epochs: give at most the batches of one pass)")
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

    def __init__(self, x, y=None, *, name: str = "x", workers: int | None = None, depth: int = 2):
        self.x = _as_array(x, name)
        self.y = None if y is None else _as_array(y, "y" if name == "x" else f"{name[:-1]}y")
        self.name = _file_name(self.x) or name
        # rows are named by their file, or as "data row 17" ("validation data row 3")
        self.rows_name = _file_name(self.x) or (name[:-1] + "data" if name.endswith("x") else name)
        if len(self.x) == 0:
            raise DatasetError(f"{self.name} is empty (0 rows, shape {self.x.shape}); pass at "
                               f"least one example")
        if self.y is not None and len(self.y) != len(self.x):
            raise DatasetError(f"x and y have different lengths: {len(self.x)} and {len(self.y)}; "
                               f"every row of x needs its target")
        self.conversion = Conversion()
        if workers is None:    # a gather in RAM takes microseconds: a thread would only add
            workers = 0 if self.in_memory else 1    # its hand-over; a file may wait on the disk
        self.prefetch = {"workers": workers, "processes": False, "depth": depth}
        self.rows_read = 0
        self.offset = 0           # the first row's number in the file (after `take`)
        self.checked = (False, False)   # (x, y) checked whole by `check_all`: converted only

    @property
    def has_targets(self) -> bool:
        return self.y is not None

    @property
    def in_memory(self) -> bool:
        """Whether x lives in RAM (not a memory-mapped file, whose pages come from the disk)."""
        return not _on_disk(self.x)

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
        part.checked = self.checked
        return part

    def subset(self, rows) -> "Rows":
        """A source over ``rows`` of this one (a random split: `Rows`)."""
        return Rows(self, rows)

    def targets(self):
        """Every row's target, as stored (a memmap stays one), or None."""
        return self.y

    def epoch_order(self, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
        """The lecture's order: a fresh permutation of every row (``arange`` without shuffle)."""
        return rng.permutation(len(self)) if shuffle else np.arange(len(self))

    def fetch(self, request: Request):
        rows = request_rows(request.key, len(self))      # a slice reads a view: no gather
        self.rows_read += rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        origin, (check_x, check_y) = self._origin(rows), self.checked
        x = self.conversion.x(self.x[rows], origin, request.where, not check_x)
        y = None if self.y is None else self.conversion.y(self.y[rows], origin, request.where,
                                                          not check_y)
        return x, y

    def _origin(self, rows):
        if isinstance(rows, slice):
            return lambda i: f"{self.rows_name} row {rows.start + i + self.offset}"
        return lambda i: f"{self.rows_name} row {int(rows[i]) + self.offset}"

    def check_all(self, targets=None, chunk_bytes: int = 16 << 20) -> None:
        """Check every row now, chunk by chunk (never a full-size copy): ``x`` when it is in
        memory (a memmap's rows are checked as batches read them: scanning it would read the
        whole file first) and ``y`` always (targets are small), with the conversion's checks;
        ``targets(y_chunk)``, when given, checks each converted chunk of ``y`` too (the loss's
        shape and range rules). ``fit`` calls it before any work, so that bad values in
        memory cost no training; what passed is then only converted per batch (the checks
        cost more than the gather on small batches)."""
        row_bytes = max(1, int(np.prod(self.row_shape, dtype=np.int64)) * 8)
        step = max(1, chunk_bytes // row_bytes)
        for lo in range(0, len(self), step):
            part = slice(lo, min(lo + step, len(self)))
            origin = self._origin(part)
            if self.in_memory:
                self.conversion.x(self.x[part], origin, "before training")
            if self.y is not None:
                y = self.conversion.y(self.y[part], origin, "before training")
                if targets is not None:
                    targets(y)
        # what passed is not checked again batch by batch (a memmap's rows still are)
        self.checked = (self.in_memory, True)

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


class Rows:
    """The rows ``rows`` of a row source, as a row source (a random train / validation / test
    split of data that stay on disk: only the row ids are held, 8 bytes per row).

    Row ``i`` of this source is row ``rows[i]`` of ``base``; messages name the base's rows
    (the file row). ``rows`` are kept sorted, so a batch's reads stay in file order."""

    unit = "row"

    def __init__(self, base, rows):
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if rows.size == 0:
            raise DatasetError("a subset of no rows: pass at least one row")
        if rows[0] < 0 or rows[-1] >= len(base):
            raise DatasetError(f"rows {int(rows[0])}..{int(rows[-1])} are outside the "
                               f"{len(base)} rows of {type(base).__name__}")
        self.base, self.rows = base, rows
        self.prefetch = base.prefetch
        self.row_shape = base.row_shape
        self.num_classes = getattr(base, "num_classes", None)
        self.has_targets = base.has_targets

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def rows_read(self) -> int:
        return self.base.rows_read

    def bind(self, conversion: Conversion) -> None:
        self.base.bind(conversion)

    def epoch_order(self, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
        return rng.permutation(len(self)) if shuffle else np.arange(len(self))

    def fetch(self, request: Request):
        key = request_rows(request.key, len(self))
        ids = self.rows[key]
        return self.base.fetch(Request(request.epoch, request.step, ids, request.label))

    def peek(self):
        return self.fetch(Request(0, 0, np.arange(min(len(self), 2))))

    def take(self, lo: int, hi: int) -> "Rows":
        check_range(lo, hi, len(self))
        return Rows(self.base, self.rows[lo:hi])

    def subset(self, rows) -> "Rows":
        return Rows(self.base, self.rows[np.asarray(rows, dtype=np.int64)])

    def targets(self):
        """The targets of these rows, in their stored dtype (`base.targets()` picked)."""
        return self.base.targets()[self.rows]

    def describe(self) -> dict:
        digest = hashlib.sha256(self.rows.tobytes()).hexdigest()
        return {**self.base.describe(), "rows": len(self), "subset_sha256": digest}

    def check_unchanged(self, *args) -> None:
        self.base.check_unchanged(*args)

    def close(self) -> None:
        self.base.close()


def request_rows(key, n: int):
    """A request's rows: a ``slice`` of consecutive rows (bounds checked) or int64 row ids."""
    if isinstance(key, slice):
        lo, hi = key.start, key.stop
        if key.step not in (None, 1) or lo is None or hi is None or not 0 <= lo < hi <= n:
            raise DatasetError(f"rows {key} are not a non-empty range of the {n} rows")
        return slice(int(lo), int(hi))
    return np.asarray(key, dtype=np.int64)


def _on_disk(a) -> bool:
    """Whether an array's memory is a mapped file (np.memmap, np.load(..., mmap_mode=...))."""
    while a is not None:
        if isinstance(a, np.memmap) or type(a).__name__ == "mmap":
            return True
        a = getattr(a, "base", None)
    return False


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
