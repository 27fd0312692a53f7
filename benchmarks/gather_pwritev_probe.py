"""A lead, not a feature: gathering a random-order batch from mapped shards with ONE system call.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gather_pwritev_probe.py /scratch/big-packed

`PackedSource` reads a batch in random order with one ``pread`` per row (256 at batch 256).
This probe maps every shard read-only, never touches the mappings from user space, and hands
the kernel the 256 row addresses in one ``pwritev`` into a memfd: the kernel copies the rows.
First it shows, on a scratch file it maps and then truncates, that such a copy from past the
new end gives a short count or EFAULT, where a user-space access would raise SIGBUS. Then it
checks the gathered bytes against ``read_rows`` on one batch, and prints the CPU time per batch (``time.thread_time``, median
and 10th percentile) of both ways over the same batches, twice: in the first pass the mapped
pages are touched for the first time. Linux only (``os.memfd_create``, libc ``pwritev``).
Numbers quoted in docs/streaming.md ("A lead for later").
"""
import argparse
import ctypes
import mmap
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from gradfit.datasets import open as open_packed  # noqa: E402

IOV_MAX = 1024


def truncation_check(pwritev):
    """Map a scratch file, truncate it, gather from past its new end: no SIGBUS, a short count."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "scratch")
        with open(path, "wb") as f:
            f.write(os.urandom(1 << 20))
        fd = os.open(path, os.O_RDONLY)
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        os.close(fd)
        base = np.frombuffer(mapped, np.uint8).ctypes.data
        memfd = os.memfd_create("gradfit-probe")
        os.ftruncate(memfd, 4096)
        iov = np.array([[base + 100, 100], [base + 900_000, 100]], dtype=np.uint64)
        whole = pwritev(memfd, iov.ctypes.data, 2, 0)
        os.truncate(path, 4096)
        short = pwritev(memfd, iov.ctypes.data, 2, 0)
        lost = pwritev(memfd, iov[1:].ctypes.data, 1, 0)
        errno = ctypes.get_errno()
        os.close(memfd)
    print(f"truncation: 2 rows gathered {whole} bytes before, {short} after (the second row is "
          f"past the new end); that row alone: {lost} ({os.strerror(errno)}); no SIGBUS")
    assert whole == 200 and short == 100 and lost == -1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("packed", help="a packed directory (benchmarks/stream_make.py writes one)")
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args(argv)
    if not 1 <= args.batch_size <= IOV_MAX:
        raise SystemExit(f"--batch-size must be 1..{IOV_MAX} (one pwritev), got {args.batch_size}")
    libc = ctypes.CDLL(None, use_errno=True)
    pwritev = libc.pwritev
    pwritev.restype = ctypes.c_ssize_t
    pwritev.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]

    truncation_check(pwritev)
    src = open_packed(args.packed, verify=False)
    size, n = src.record.itemsize, args.batch_size
    maps, bases = [], []
    for name, offset in zip(src.files, src._offsets):
        fd = os.open(src.folder / name, os.O_RDONLY)
        maps.append(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        os.close(fd)
        bases.append(np.frombuffer(maps[-1], np.uint8).ctypes.data + int(offset))
    bases = np.array(bases, dtype=np.uint64)
    memfd = os.memfd_create("gradfit-batch")
    os.ftruncate(memfd, n * size)
    batch = np.frombuffer(mmap.mmap(memfd, n * size), np.uint8)
    iov = np.empty((n, 2), dtype=np.uint64)                 # struct iovec: base, length

    def gather(rows):
        shard = np.searchsorted(src._ends, rows, side="right")
        iov[:, 0] = bases[shard] + ((rows - src._starts[shard]) * size).astype(np.uint64)
        iov[:, 1] = size
        got = pwritev(memfd, iov.ctypes.data, n, 0)
        if got != n * size:
            raise OSError(ctypes.get_errno(), f"pwritev gathered {got} of {n * size} bytes")

    rng = np.random.default_rng(0)
    batches = [rng.choice(len(src), n, replace=False) for _ in range(args.batches)]
    gather(batches[0])
    expected = src.read_rows(batches[0], "check").view(np.uint8).reshape(-1)
    assert np.array_equal(batch, expected), "the gathered bytes differ from read_rows"
    print(f"{args.packed}: {len(src)} rows of {size} bytes in {len(src.files)} shards; "
          f"batches of {n} in random order, CPU ms per batch")
    for p in (1, 2):
        for label, fn in (("pwritev from mappings", gather),
                          ("read_rows (preads)", lambda rows: src.read_rows(rows, "probe"))):
            ts = []
            for rows in batches[1:]:
                t = time.thread_time()
                fn(rows)
                ts.append(time.thread_time() - t)
            print(f"  pass {p}  {label:<22} median {np.median(ts) * 1e3:.3f}  "
                  f"p10 {np.percentile(ts, 10) * 1e3:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
