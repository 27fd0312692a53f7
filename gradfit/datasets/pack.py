"""Writing the packed format (`gradfit.datasets.packed`): ``gradfit data pack SRC OUT``.

`pack` (arrays, memmaps included: read in chunks, never copied whole) and `pack_chunks` (any
iterable of ``(x, y)`` chunks, of any sizes) cut the rows into shards of ``shard_rows`` rows
(or as many as fit in ``shard_bytes``), checking every chunk as it comes: one row shape and
dtype for all chunks, numeric and finite values, labels ``>= 0`` (and ``< num_classes``
when given), ``x`` and ``y`` of equal length. `pack_file` reads ``.npz``, ``.csv``, IDX
(``.gz`` or raw, labels from a second file), a ``.npy`` file, or a folder holding ``x.npy``
(and ``y.npy``) opened as memmaps. ``.npy`` and folders are read chunk by chunk; ``.npz``,
``.csv`` and IDX files are read whole first (their formats cannot be read by rows): pack data
larger than memory from ``.npy`` files or with `pack_chunks` over your own reader.

Writing is atomic: the shards and the index go to a temporary folder next to ``out``, each
file flushed and fsynced; the index is written last; then every shard is read back and its
SHA-256 compared with the hash of the bytes that were meant to be written; only then is the
folder renamed to ``out`` (an existing ``out`` is replaced only with ``overwrite=True``, and
only once the new data are verified). A crash leaves ``out`` as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..checks import check_int
from .base import DatasetError, check_finite
from .files import load_csv
from .idx import parse_idx, read_idx_gz
from .packed import PackedSource
from .packed_format import FORMAT, INDEX, VERSION

DEFAULT_SHARD_BYTES = 64 << 20
_CHUNK_ROWS = 65536


def pack(x, y, out, *, shard_rows: int | None = None, shard_bytes: int | None = None,
         num_classes: int | None = None, overwrite: bool = False, progress=None,
         source: str = "arrays") -> dict:
    """Pack arrays ``x (n, *row_shape)`` and ``y (n, ...)`` (or None) into directory ``out``.

    Memmaps are read ``_CHUNK_ROWS`` rows at a time. Returns the index (see `pack_chunks`)."""
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if y is not None:
        y = np.asarray(y) if not isinstance(y, np.ndarray) else y
        if len(y) != len(x):
            raise DatasetError(f"x and y have different lengths: {len(x)} and {len(y)}")
    chunks = ((x[s:s + _CHUNK_ROWS], None if y is None else y[s:s + _CHUNK_ROWS])
              for s in range(0, len(x), _CHUNK_ROWS))
    return pack_chunks(chunks, out, total_rows=len(x), shard_rows=shard_rows,
                       shard_bytes=shard_bytes, num_classes=num_classes, overwrite=overwrite,
                       progress=progress, source=source)


def pack_chunks(chunks, out, *, total_rows: int | None = None, shard_rows: int | None = None,
                shard_bytes: int | None = None, num_classes: int | None = None,
                overwrite: bool = False, progress=None, source: str = "an iterator") -> dict:
    """Pack an iterable of chunks ``(x, y)`` (or ``(x, None)`` / bare ``x``) into ``out``.

    ``shard_rows`` rows per shard, or else as many as fit in ``shard_bytes`` (default 64 MiB).
    ``num_classes``: labels must be below it (default: the largest label + 1, recorded in
    the index). ``progress(rows_done, total_rows)`` is called after every chunk.
    Returns the index written (a dict)."""
    out = Path(out).expanduser()
    _check_target(out, overwrite)
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, 1)
    tmp = out.parent / f".{out.name}.packing-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        writer = _ShardWriter(tmp, shard_rows, shard_bytes, num_classes)
        for k, chunk in enumerate(chunks):
            writer.add(*_unpack(chunk, k), where=f"chunk {k} (rows {writer.rows}..)")
            if progress is not None:
                progress(writer.rows, total_rows)
        index = writer.finish(source)
        _write_json(tmp / INDEX, index)
        PackedSource(tmp, verify=True).close()      # read back: sizes, headers, SHA-256
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return index


def pack_file(src, out, *, labels=None, x_key: str | None = None, y_key: str | None = None,
              label_column=-1, **options) -> dict:
    """Pack a file or folder: ``.npz`` (``x_key``/``y_key``, default ``x``/``y`` or Keras's
    ``x_train``/``y_train``), ``.csv`` (``label_column``, see `load_csv`), IDX (``.gz`` or raw;
    ``labels`` = the labels' IDX file), ``.npy`` (``labels`` = a ``.npy`` of targets), or a
    folder holding ``x.npy`` and optionally ``y.npy``. ``options`` go to `pack`."""
    src = Path(src).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist; give a .npz, .csv, IDX or .npy file, or a "
                                f"folder holding x.npy and y.npy")
    x, y = _read_source(src, labels, x_key, y_key, label_column)
    return pack(x, y, out, source=src.name + (f" + {Path(labels).name}" if labels else ""),
                **options)


# -- reading what is to be packed ---------------------------------------------------------------
def _read_source(src: Path, labels, x_key, y_key, label_column):
    if src.is_dir():
        if not (src / "x.npy").is_file():
            raise DatasetError(f"{src}: a folder to pack must hold x.npy (and y.npy for targets)")
        x = np.load(src / "x.npy", mmap_mode="r")
        y = np.load(src / "y.npy", mmap_mode="r") if (src / "y.npy").is_file() else None
        return x, y
    name = src.name.lower()
    if name.endswith(".npz"):
        return _read_npz(src, x_key, y_key)
    if name.endswith(".csv"):
        return load_csv(src, label_column=label_column)
    if name.endswith(".npy"):
        return np.load(src, mmap_mode="r"), None if labels is None else np.load(labels, mmap_mode="r")
    if "idx" in name or name.endswith("-ubyte") or name.endswith(".gz"):
        return _read_idx(src), None if labels is None else _read_idx(Path(labels))
    raise DatasetError(f"{src}: unknown kind of file; give .npz, .csv, .npy, an IDX file "
                       f"(*-idx3-ubyte[.gz]) or a folder holding x.npy and y.npy")


def _read_idx(path: Path) -> np.ndarray:
    if path.name.lower().endswith(".gz"):
        return read_idx_gz(path)
    return parse_idx(path.read_bytes(), str(path))


def _read_npz(src: Path, x_key, y_key):
    with np.load(src, allow_pickle=False) as f:
        keys = list(f.keys())
        if x_key is None:
            x_key = "x" if "x" in keys else "x_train" if "x_train" in keys else None
        if y_key is None:
            y_key = {"x": "y", "x_train": "y_train"}.get(x_key)
            y_key = y_key if y_key in keys else None
        if x_key not in keys:
            raise DatasetError(f"{src}: no array {x_key!r}; the file holds {keys}: pass --x-key "
                               f"(and --y-key) naming the features and the targets")
        if y_key is not None and y_key not in keys:
            raise DatasetError(f"{src}: no array {y_key!r}; the file holds {keys}")
        return f[x_key], None if y_key is None else f[y_key]


# -- writing shards -----------------------------------------------------------------------------
class _ShardWriter:
    """Fills one shard-sized buffer of records and writes it out when full."""

    def __init__(self, folder: Path, shard_rows, shard_bytes, num_classes):
        for name, v in (("shard_rows", shard_rows), ("shard_bytes", shard_bytes)):
            if v is not None:
                check_int(name, v, 1)
        self.folder, self.shard_rows, self.shard_bytes = folder, shard_rows, shard_bytes
        self.num_classes = num_classes
        self.record = None
        self.rows, self.fill, self.shards = 0, 0, []
        self.max_label = -1

    def add(self, x, y, where: str) -> None:
        x = np.asarray(x)
        if self.record is None:
            self._start(x, y, where)
        self._check(x, y, where)
        done = 0
        while done < len(x):
            take = min(len(x) - done, len(self.buf) - self.fill)
            part = self.buf[self.fill:self.fill + take]
            part["x"] = x[done:done + take]
            if y is not None:
                part["y"] = np.asarray(y)[done:done + take]
            self.fill += take
            done += take
            if self.fill == len(self.buf):
                self._flush()
        self.rows += len(x)

    def _start(self, x, y, where):
        if x.ndim < 1 or x.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: x must be a numeric array of rows, got shape {x.shape} "
                               f"dtype {x.dtype}")
        fields = [("x", x.dtype.newbyteorder("<"), x.shape[1:])]
        if y is not None:
            y = np.asarray(y)
            if y.dtype.kind not in "biuf":
                raise DatasetError(f"{where}: y must be numeric, got dtype {y.dtype}")
            fields.append(("y", y.dtype.newbyteorder("<"), y.shape[1:]))
        self.record = np.dtype(fields)
        rows = self.shard_rows or max(1, (self.shard_bytes or DEFAULT_SHARD_BYTES) // self.record.itemsize)
        self.buf = np.zeros(rows, dtype=self.record)

    def _check(self, x, y, where):
        rx = self.record["x"]
        if x.shape[1:] != rx.shape or x.dtype.newbyteorder("<") != rx.base:
            raise DatasetError(f"{where}: rows of shape {x.shape[1:]} {x.dtype}, the first chunk had "
                               f"{rx.shape} {rx.base}; every chunk must have rows of one shape "
                               f"and dtype")
        check_finite(x, f"{where}: x")
        if (y is None) != ("y" not in self.record.names):
            raise DatasetError(f"{where}: chunks must all have targets or all have none")
        if y is None:
            return
        y = np.asarray(y)
        ry = self.record["y"]
        if len(y) != len(x) or y.shape[1:] != ry.shape or y.dtype.newbyteorder("<") != ry.base:
            raise DatasetError(f"{where}: y of shape {y.shape} {y.dtype} for {len(x)} rows; "
                               f"expected ({len(x)}, *{ry.shape}) {ry.base}")
        check_finite(y, f"{where}: y")
        if y.dtype.kind in "iu" and y.ndim == 1 and y.size:
            if y.min() < 0:
                raise DatasetError(f"{where}: label {int(y.min())} is negative; class labels must "
                                   f"be 0..num_classes-1")
            if self.num_classes is not None and y.max() >= self.num_classes:
                raise DatasetError(f"{where}: label {int(y.max())} is out of range for "
                                   f"num_classes={self.num_classes}")
            self.max_label = max(self.max_label, int(y.max()))

    def _flush(self):
        name = f"shard-{len(self.shards):05d}.npy"
        digest, size = _write_npy(self.folder / name, self.buf[:self.fill])
        self.shards.append({"file": name, "rows": int(self.fill), "bytes": size, "sha256": digest})
        self.fill = 0

    def finish(self, source: str) -> dict:
        if self.fill:
            self._flush()
        if self.rows == 0:
            raise DatasetError(f"{source}: nothing to pack (0 rows)")
        y = None
        if "y" in self.record.names:
            y = {"shape": list(self.record["y"].shape), "dtype": self.record["y"].base.str}
        labels = y is not None and not y["shape"] and self.record["y"].base.kind in "iu"
        return {"format": FORMAT, "version": VERSION, "rows": self.rows,
                "x": {"shape": list(self.record["x"].shape), "dtype": self.record["x"].base.str},
                "y": y,
                "num_classes": (self.num_classes or self.max_label + 1) if labels else None,
                "record_bytes": self.record.itemsize, "shards": self.shards, "source": source,
                "writer": "gradfit", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class _HashingFile:
    """A write-only file that hashes and counts what passes through (for np.save)."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += memoryview(data).nbytes
        return self.f.write(data)


def _write_npy(path: Path, records: np.ndarray) -> tuple[str, int]:
    with open(path, "wb") as f:
        h = _HashingFile(f)
        np.lib.format.write_array(h, records, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    return h.sha.hexdigest(), h.size


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _unpack(chunk, k):
    if isinstance(chunk, tuple) and len(chunk) == 2:
        return chunk
    if isinstance(chunk, np.ndarray):
        return chunk, None
    raise DatasetError(f"chunk {k}: expected (x, y) or an array x, got {type(chunk).__name__}")


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise DatasetError(f"{out} already exists", "replace it with {overwrite}")
    if not out.is_dir() or (any(out.iterdir()) and not (out / INDEX).is_file()):
        raise DatasetError(f"{out} exists and is not a packed data directory; it will not be "
                           f"replaced", "choose another {out}")


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    os.rename(tmp, out)
    _fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
