"""Strict reader (and a tiny writer, for tests) of the IDX format used by MNIST.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions k
    k * int32   size of each dimension (big-endian)

followed by exactly ``prod(sizes)`` elements, big-endian, row-major.  The 32-bit "magic
number" is bytes 0-3 read as one big-endian integer: 2051 (0x00000803) for MNIST images
(uint8, 3 dims) and 2049 (0x00000801) for labels (uint8, 1 dim).
"""
from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np

from .base import DatasetError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def parse_idx(data: bytes, source: str = "<bytes>", expect_magic: int | None = None) -> np.ndarray:
    """Decode the (already decompressed) bytes of one IDX file into an array.

    Every structural fact is checked: leading zero bytes, known element type, the magic
    number if ``expect_magic`` is given, and a payload of exactly ``prod(dims)`` elements
    (no truncation, no trailing bytes).  Errors raise ``DatasetError`` naming ``source``.
    """
    if len(data) < 4:
        raise DatasetError(f"{source}: {len(data)} bytes is too short for an IDX header (need >= 4); "
                           f"the file is truncated, delete it so it is fetched again")
    magic = struct.unpack(">I", data[:4])[0]
    if expect_magic is not None and magic != expect_magic:
        raise DatasetError(f"{source}: IDX magic number {magic} (0x{magic:08x}), expected "
                           f"{expect_magic} (0x{expect_magic:08x}); this is not the right file")
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\0\0" or code not in _TYPES or ndim == 0:
        raise DatasetError(f"{source}: invalid IDX header {data[:4].hex()} (magic {magic}); "
                           f"expected 0000 + type byte in {sorted(_TYPES)} + ndim >= 1")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DatasetError(f"{source}: truncated IDX header: {ndim} dims need {head} bytes, "
                           f"file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    dtype = np.dtype(_TYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - head != expected:
        raise DatasetError(f"{source}: IDX dims {dims} of {dtype.name} need {expected} data bytes, "
                           f"file has {len(data) - head}; the file is truncated or corrupt")
    arr = np.frombuffer(data, dtype=dtype, offset=head).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx_gz(path, expect_magic: int | None = None) -> np.ndarray:
    """Decompress and parse a gzipped IDX file (``*.gz``); see :func:`parse_idx`."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DatasetError(f"{path}: not a valid gzip file ({exc}); delete it so it is fetched "
                           f"again, or replace it with the official file") from exc
    return parse_idx(data, str(path), expect_magic)


def write_idx(arr: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (the inverse of :func:`parse_idx`; used by the tests)."""
    arr = np.asarray(arr)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
    code = codes[arr.dtype.newbyteorder("=")]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(np.dtype(_TYPES[code]), copy=False).tobytes()
