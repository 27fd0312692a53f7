"""The packed format's definition: ``index.json``, the row record, shard headers, hashes.

A packed directory (written by `gradfit.datasets.pack`, read by `PackedSource`)::

    index.json          what the shards hold (below); written last, atomically
    shard-00000.npy     rows 0 .. r0-1, one fixed-size record per row
    shard-00001.npy     the rows that follow ...

Each shard is a plain ``.npy`` file (``np.load(shard, mmap_mode="r")`` opens it) of a
structured dtype with one record per row: field ``x`` of the row's shape and dtype and, when
the data have targets, field ``y``. A row is one contiguous record, so a batch of rows costs
one read per run of consecutive rows. ``index.json`` (in the spirit of Mosaic streaming's
``index.json``, smaller)::

    {"format": "gradfit-packed", "version": 1, "rows": 60000,
     "x": {"shape": [28, 28], "dtype": "|u1"}, "y": {"shape": [], "dtype": "|u1"},
     "num_classes": 10, "record_bytes": 785,
     "shards": [{"file": "shard-00000.npy", "rows": 1000, "bytes": 785128,
                 "sha256": "..."}, ...],
     "source": "what was packed", "writer": "gradfit", "created": "..."}

``num_classes`` is the largest integer label + 1 (or what the packer was told), None for
regression targets; ``y`` is None for data without targets.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .base import DatasetError

INDEX = "index.json"
FORMAT = "gradfit-packed"
VERSION = 1


def read_index(folder) -> dict:
    """The validated ``index.json`` of a packed directory; DatasetError naming what is wrong."""
    return parse_index(index_bytes(folder), Path(folder) / INDEX)


def index_bytes(folder) -> bytes:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"packed data directory {str(folder)!r} does not exist; write one "
                                f"with `gradfit data pack SRC {folder}`")
    if not (folder / INDEX).is_file():
        raise DatasetError(f"{folder} is not a packed data directory (no {INDEX}); write one with "
                           f"`gradfit data pack SRC DIR`")
    return (folder / INDEX).read_bytes()


def parse_index(raw: bytes, path) -> dict:
    """Check the index's bytes: format, version, keys, shard entries, row counts."""
    try:
        index = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); the index is corrupted: pack the "
                           f"data again") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise DatasetError(f"{path}: not a gradfit packed index (format {found!r}, expected "
                           f"{FORMAT!r})")
    if index.get("version") != VERSION:
        raise DatasetError(f"{path}: packed format version {index.get('version')!r}; this gradfit "
                           f"reads version {VERSION}: pack the data again")
    for key in ("rows", "x", "shards", "record_bytes"):
        if key not in index:
            raise DatasetError(f"{path}: the index has no {key!r}; pack the data again")
    shards = index["shards"]
    if not isinstance(shards, list) or not shards:
        raise DatasetError(f"{path}: the index lists no shards; pack the data again")
    for i, s in enumerate(shards):
        if not isinstance(s, dict) or not {"file", "rows", "bytes", "sha256"} <= set(s):
            raise DatasetError(f"{path}: shard entry {i} must have file, rows, bytes, sha256")
        if Path(s["file"]).name != s["file"]:
            raise DatasetError(f"{path}: shard entry {i} names {s['file']!r}; shards must lie in "
                               f"the directory itself")
    if sum(s["rows"] for s in shards) != index["rows"]:
        raise DatasetError(f"{path}: the shards hold {sum(s['rows'] for s in shards)} rows, the "
                           f"index says {index['rows']}; pack the data again")
    if record_dtype(index).itemsize != index["record_bytes"]:
        raise DatasetError(f"{path}: x/y shapes and dtypes make {record_dtype(index).itemsize}-"
                           f"byte rows, the index says {index['record_bytes']}")
    return index


def record_dtype(index: dict) -> np.dtype:
    """The structured dtype of one row: ``x`` (and ``y``) with their shapes."""
    fields = [("x", np.dtype(index["x"]["dtype"]), tuple(index["x"]["shape"]))]
    if index.get("y") is not None:
        fields.append(("y", np.dtype(index["y"]["dtype"]), tuple(index["y"]["shape"])))
    return np.dtype(fields)


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_header(path) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data offset) of an ``.npy`` file, without reading its data."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as exc:
            raise DatasetError(f"{path}: not a valid .npy shard ({exc}); the shard is corrupted: "
                               f"pack the data again") from None
        if fortran:
            raise DatasetError(f"{path}: a Fortran-ordered array is not a packed shard")
        return tuple(shape), dtype, f.tell()
