"""`PackedSource`: the rows of a packed directory (`packed_format`), read per batch.

Rows are read with positional reads (``pread``) into a buffer the size of one batch: one
read per run of consecutive rows of a shard, issued from a compiled loop (`preads`, with numba)
or from Python (``os.preadv``, without it). The files are never mapped, so a shard truncated
while training gives a short read and a clear error instead of SIGBUS. Opening checks every
shard's size and header against the index (a truncated shard, a wrong row width or dtype), and
with ``verify=True`` its SHA-256; every fetch checks that the shards it reads have not changed
since (size, modification time), and `check_unchanged` (each epoch start) that no shard or
the index was replaced.
"""
from __future__ import annotations

import collections
import copy
import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from ..checks import check_choice, check_int
from .base import DatasetError
from .convert import Conversion
from .packed_format import INDEX, index_bytes, parse_index, read_header, record_dtype, sha256_file
from .preads import read_runs
from .shuffle import block_order
from .sources import Request, Rows, check_range, request_rows

_MAX_OPEN = 256            # file descriptors kept open per process (least recently used go)
_CHUNK_BYTES = 64 << 10    # the block shuffle's read unit: one read of 64 KiB costs about a seek
_ORDERS = ("full", "block")


class PackedSource:
    """Rows of a packed directory, read per batch (``unit == "row"``; see `sources`).

    ``order``: ``"full"`` (the lecture's permutation of all rows each epoch, the default) or
    ``"block"`` (the (chunk, block) shuffle of `gradfit.datasets.shuffle`, for data larger than
    the page cache: windows of ``block_rows`` rows, default 262144 as Mosaic's, made of chunks
    of ``chunk_rows`` consecutive rows, default 64 KiB of rows per chunk).
    ``verify``: hash every shard now (SHA-256 against the index); sizes and headers are
    always checked. ``workers`` / ``depth``: prefetch threads and batches prepared ahead.
    """

    unit = "row"

    def __init__(self, folder, *, order: str = "full", block_rows: int | None = None,
                 chunk_rows: int | None = None, verify: bool = True, workers: int = 1,
                 depth: int = 2):
        check_choice("order", order, _ORDERS)
        for name, v in (("block_rows", block_rows), ("chunk_rows", chunk_rows)):
            if v is not None:
                check_int(name, v, 1)
        self.folder = Path(folder).expanduser().resolve()
        self._index_stat = _signature(_stat(self.folder / INDEX))
        raw = index_bytes(self.folder)        # parsed and hashed from the same bytes
        self.index = parse_index(raw, self.folder / INDEX)
        self._index_sha = hashlib.sha256(raw).hexdigest()
        self.record = record_dtype(self.index)
        shards = self.index["shards"]
        self.files = [s["file"] for s in shards]
        self.shard_rows = np.array([s["rows"] for s in shards], dtype=np.int64)
        self._ends = np.cumsum(self.shard_rows)
        self._starts = self._ends - self.shard_rows
        self.order = order
        self.block_rows = int(block_rows or 1 << 18)
        self.chunk_rows = int(chunk_rows or max(1, _CHUNK_BYTES // self.record.itemsize))
        self.conversion = Conversion()
        self.prefetch = {"workers": workers, "processes": False, "depth": depth}
        self.rows_read = 0
        self._lo, self._hi = 0, int(self.index["rows"])     # the rows this source serves
        self._offsets, self._stats = self._check_shards()
        self._init_files()
        if verify:
            self.verify()

    # -- the protocol -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._hi - self._lo

    def take(self, lo: int, hi: int) -> "PackedSource":
        """A source over rows ``[lo, hi)`` of this one (no copy; Keras's validation_split takes
        the last rows); the block shuffle then works on the shards' parts in the range."""
        check_range(lo, hi, len(self))
        view = copy.copy(self)
        view._lo, view._hi = self._lo + int(lo), self._lo + int(hi)
        view.rows_read = 0
        view._init_files()
        return view

    @property
    def row_shape(self) -> tuple:
        return tuple(self.index["x"]["shape"])

    @property
    def num_classes(self):
        return self.index.get("num_classes")

    @property
    def has_targets(self) -> bool:
        return "y" in self.record.names

    def bind(self, conversion: Conversion) -> None:
        self.conversion = conversion

    def epoch_order(self, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
        if not shuffle:
            return np.arange(len(self))
        if self.order == "block":                 # the parts of the shards inside the range
            sizes = np.minimum(self._ends, self._hi) - np.maximum(self._starts, self._lo)
            return block_order(np.maximum(sizes, 0), self.block_rows, rng, self.chunk_rows)
        return rng.permutation(len(self))

    def fetch(self, request: Request):
        rows = request_rows(request.key, len(self))
        if isinstance(rows, slice):
            rows = np.arange(rows.start, rows.stop, dtype=np.int64)
        rows = rows.reshape(-1)
        records = self.read_rows(rows, request.where)
        with self._lock:                       # prefetch threads fetch concurrently
            self.rows_read += len(rows)
        origin = self._origin(rows)
        x = self.conversion.x(records["x"], origin, request.where)
        y = None
        if "y" in self.record.names:
            y = self.conversion.y(records["y"], origin, request.where)
        return x, y

    def peek(self):
        return self.fetch(Request(0, 0, np.arange(min(len(self), 2))))

    def subset(self, rows) -> Rows:
        """A source over ``rows`` of this one (a random split: `Rows`)."""
        return Rows(self, rows)

    def targets(self, chunk_bytes: int = 16 << 20):
        """Every row's target in its stored dtype (None without targets), read in chunks of
        ``chunk_bytes``: the labels of a large set (1 byte per row for uint8 labels) without
        ever holding more than one chunk of the rows themselves."""
        if "y" not in self.record.names:
            return None
        y = np.empty((len(self), *self.record["y"].shape), dtype=self.record["y"].base)
        step = max(1, chunk_bytes // self.record.itemsize)
        for lo in range(0, len(self), step):
            hi = min(lo + step, len(self))
            y[lo:hi] = self.read_rows(np.arange(lo, hi), "reading the targets")["y"]
        return y

    def describe(self) -> dict:
        d = {"kind": "packed", "rows": len(self), "index_sha256": self._index_sha,
             "order": self.order, "path": str(self.folder)}
        if self.order == "block":
            d["block_rows"], d["chunk_rows"] = self.block_rows, self.chunk_rows
        if len(self) != self.index["rows"]:
            d["range"] = [self._lo, self._hi]
        return d

    def check_unchanged(self, where: str = "before the epoch") -> None:
        """Raise if the index or any shard was replaced or modified since the source opened."""
        if _signature(_stat(self.folder / INDEX)) != self._index_stat:
            raise DatasetError(f"{where}: {self.folder / INDEX} changed while training; the "
                               f"packed data must not change during a run: restore it or start "
                               f"afresh")
        for s, name in enumerate(self.files):
            now = _signature(_stat(self.folder / name))
            if now != self._stats[s]:
                raise self._changed(s, now, where)

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- checks -----------------------------------------------------------------------------------
    def _check_shards(self):
        offsets, stats = [], []
        for s, entry in enumerate(self.index["shards"]):
            path = self.folder / entry["file"]
            if not path.is_file():
                raise DatasetError(f"{path} is missing: the index lists {len(self.files)} shards; "
                                   f"the packed directory is incomplete: pack the data again")
            st = os.stat(path)
            if st.st_size != entry["bytes"]:
                raise DatasetError(f"{path} has {st.st_size} bytes, the index says "
                                   f"{entry['bytes']}: the shard is truncated or was replaced; "
                                   f"pack the data again")
            shape, dtype, offset = read_header(path)
            if dtype != self.record:
                raise DatasetError(f"{path} holds rows of dtype {dtype} ({dtype.itemsize} bytes "
                                   f"per row), the index says {self.record} "
                                   f"({self.record.itemsize} bytes): wrong row width or dtype; "
                                   f"pack the data again")
            if shape != (entry["rows"],):
                raise DatasetError(f"{path} holds an array of shape {shape}, the index says "
                                   f"{entry['rows']} rows; pack the data again")
            if offset + entry["rows"] * self.record.itemsize != st.st_size:
                raise DatasetError(f"{path}: header and size disagree ({st.st_size} bytes for "
                                   f"{entry['rows']} rows); the shard is corrupted")
            offsets.append(offset)
            stats.append(_signature(st))
        return np.array(offsets, dtype=np.int64), stats

    def verify(self, part: tuple[int, int] | None = None) -> None:
        """Check the SHA-256 of every shard (or of shards ``rank::size`` for ``part=(rank,
        size)``, so that MPI ranks share the work) against the index."""
        rank, size = part or (0, 1)
        for s in range(rank, len(self.files), size):
            entry = self.index["shards"][s]
            digest = sha256_file(self.folder / entry["file"])
            if digest != entry["sha256"]:
                raise DatasetError(f"{self.folder / entry['file']}: SHA-256 {digest[:16]}... does "
                                   f"not match the index's {entry['sha256'][:16]}...: the shard is "
                                   f"corrupted; pack the data again")

    def _changed(self, s, now, where):
        was, now = self._stats[s][0], "deleted" if now is None else now[0]
        return DatasetError(f"{where}: {self.folder / self.files[s]} changed while training (size "
                            f"{was} -> {now}); the packed data must not change during a run: "
                            f"restore it or start afresh")

    # -- reading ----------------------------------------------------------------------------------
    def read_rows(self, rows: np.ndarray, where: str) -> np.ndarray:
        """The records of ``rows`` (any order, repeats allowed; numbered from the start of this
        source's range), read with one positional read per run of consecutive rows of a shard
        (a batch in full random order: one per row, so they are issued by `preads.read_runs`,
        and by Python only where it stops: no numba, or a short read to retry or report)."""
        n = len(self)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            bad = rows[(rows < 0) | (rows >= n)][0]
            raise DatasetError(f"{where}: row {int(bad)} is out of range for {n} packed rows")
        rows = rows + self._lo
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        shard = np.searchsorted(self._ends, srt, side="right")
        local = srt - self._starts[shard]
        size = self.record.itemsize
        buf = np.empty(len(rows), dtype=self.record)
        raw = buf.view(np.uint8).reshape(len(rows), size)
        cut = np.flatnonzero((np.diff(shard) != 0) | (np.diff(local) != 1)) + 1
        starts = np.concatenate(([0], cut)).astype(np.int64)
        stops = np.concatenate((cut, [len(srt)])).astype(np.int64)
        shards = shard[starts]
        offsets = (self._offsets[shards] + local[starts] * size).astype(np.int64)
        # the runs of one shard are neighbours (the rows are sorted): the shards are opened (and
        # checked unchanged) once each, a group of them at a time, and the group's runs read
        change = np.flatnonzero(np.diff(shards)) + 1
        first_run = np.concatenate(([0], change, [len(starts)])).tolist()
        flat = raw.reshape(-1)
        group = max(1, _MAX_OPEN // 4)           # descriptors held at once, per reading thread
        for g in range(0, len(first_run) - 1, group):
            g1 = min(g + group, len(first_run) - 1)
            lo, hi = first_run[g], first_run[g1]
            held = []
            try:
                for k in first_run[g:g1]:
                    held.append((int(shards[k]), self._fd(int(shards[k]), where, check=True)))
                fds = np.repeat(np.array([fd for _, fd in held], dtype=np.int64),
                                np.diff(first_run[g:g1 + 1]))
                self._read_runs(fds, flat, offsets[lo:hi], starts[lo:hi], stops[lo:hi],
                                shards[lo:hi], local, where)
            finally:
                for s, _ in held:
                    self._release(s)
        out = np.empty_like(buf)
        out[order] = buf
        return out

    def _read_runs(self, fds, flat, offsets, starts, stops, shards, local, where):
        """Read runs ``k`` (``stops[k] - starts[k]`` rows from byte ``offsets[k]`` of ``fds[k]``
        into row ``starts[k]`` of ``flat``): compiled first; whatever it leaves (all of it
        without numba, or from a short read on) in Python, where a short read is retried,
        raised or named."""
        size = self.record.itemsize
        first = read_runs(fds, flat, offsets, starts, stops, size)
        if first == len(offsets):
            return
        mv = memoryview(flat)
        for k, (a, b, fd, at) in enumerate(zip(starts[first:].tolist(), stops[first:].tolist(),
                                               fds[first:].tolist(), offsets[first:].tolist()),
                                           start=first):
            got = _read_at(fd, mv[a * size:b * size], at)
            if got != (b - a) * size:
                s = int(shards[k])
                row = int(local[a]) + got // size
                raise DatasetError(f"{where}: {self.folder / self.files[s]} ends at row {row} of "
                                   f"its {self.shard_rows[s]}: the shard was truncated while "
                                   f"training; restore it or pack the data again")

    def _origin(self, rows):
        def origin(i):
            r = int(rows[i]) + self._lo
            s = int(np.searchsorted(self._ends, r, side="right"))
            return f"data row {r} ({self.files[s]}, row {r - int(self._starts[s])})"
        return origin

    def _init_files(self):
        self._fds = collections.OrderedDict()    # shard -> descriptor, least recently used first
        self._busy = collections.Counter()       # shard -> reads in progress (never closed)
        self._lock = threading.Lock()

    def _fd(self, s: int, where: str, check: bool) -> int:
        """An open descriptor of shard s, marked busy until `_release`; with ``check``, the
        shard must be as it was when the source opened (size, modification time, inode)."""
        with self._lock:
            fd = self._fds.pop(s, None)
            if fd is None:
                fd = os.open(self.folder / self.files[s], os.O_RDONLY)
                check = True
                idle = [t for t in self._fds if not self._busy[t]]
                for t in idle[:max(0, len(self._fds) + 1 - _MAX_OPEN)]:
                    os.close(self._fds.pop(t))
            self._fds[s] = fd
            self._busy[s] += 1
        if check:
            now = _signature(os.fstat(fd))
            if now != self._stats[s]:
                self._release(s)
                raise self._changed(s, now, where)
        return fd

    def _release(self, s: int) -> None:
        with self._lock:
            self._busy[s] -= 1

    # worker processes get a copy without the open files; they open their own
    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_fds"], state["_busy"], state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_files()


def open_packed(folder, *, order: str = "full", block_rows: int | None = None,
                chunk_rows: int | None = None, verify: bool = True, workers: int = 1,
                depth: int = 2) -> PackedSource:
    """``gradfit.datasets.open(DIR)``: a source over a packed directory (see `PackedSource`)."""
    return PackedSource(folder, order=order, block_rows=block_rows, chunk_rows=chunk_rows,
                        verify=verify, workers=workers, depth=depth)


def _signature(st) -> tuple | None:
    """What identifies a file's content cheaply: size, modification time, inode, device."""
    return None if st is None else (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _stat(path):
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


_PREADV = hasattr(os, "preadv")


def _read_at(fd: int, view: memoryview, offset: int) -> int:
    """Read into the byte view ``view`` from ``offset`` without moving a shared file position
    (threads share the descriptors); the number of bytes read (short at the end of a truncated
    file). One ``preadv`` in the usual case; it reads what `preads.read_runs` left: nothing
    after a full compiled read, everything without numba."""
    total = 0
    while total < len(view):
        if _PREADV:
            got = os.preadv(fd, [view[total:]], offset + total)
        else:
            data = os.pread(fd, len(view) - total, offset + total)
            view[total:total + len(data)] = data
            got = len(data)
        if got == 0:
            break
        total += got
    return total
