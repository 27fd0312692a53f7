"""Many positional reads in one call: the rows of a random-order batch, read without Python.

A batch in the lecture's random order touches one scattered row per example: 256 reads of 785
bytes at batch 256. From Python each costs the syscall plus about 3 us of interpreter work
(``os.preadv``, a memoryview slice, the loop), which on a 2-core machine is taken from the BLAS
threads of the training step (`docs/streaming.md`). `read_runs` issues the same ``pread`` calls
from one compiled loop (numba, with the GIL released), so a batch costs the syscalls alone.

Only the usual case is done here: a read that returns fewer bytes than asked (end of a
truncated file, EINTR, an error) stops the loop and reports where, and the caller finishes
that read and the rest in Python (`packed._read_at`), which retries, raises the OSError or
names the truncated shard. Without numba, or without libc's ``pread`` (Windows), `read_runs`
returns 0 and the caller reads everything itself.
"""
from __future__ import annotations

import numpy as np

_kernel = None       # the compiled loop once built; False when it cannot be
_pread = None        # numba's declaration of libc's pread, a global of the compiled loop


def _loop(fds, out, offsets, starts, stops, size):
    """Read run k, ``(stops[k] - starts[k]) * size`` bytes from ``offsets[k]`` of ``fds[k]``, into
    ``out[starts[k] * size:]``; the number of runs read in full (stops at the first short one)."""
    base = out.ctypes.data
    for k in range(offsets.size):
        want = (stops[k] - starts[k]) * size
        if _pread(fds[k], base + starts[k] * size, want, offsets[k]) != want:
            return k
    return offsets.size


def read_runs(fds: np.ndarray, out: np.ndarray, offsets: np.ndarray, starts: np.ndarray,
              stops: np.ndarray, size: int) -> int:
    """Read the runs ``k`` of `_loop` into the contiguous uint8 array ``out``; how many were
    read in full, from the first (0 when there is no compiled loop: read them all yourself)."""
    kernel = _compiled()
    if not kernel or offsets.size == 0:
        return 0
    return int(kernel(fds, out, offsets, starts, stops, size))


def _compiled():
    global _kernel, _pread
    if _kernel is None:
        try:   # a serial loop: numba's threading layer (gradfit.backend) plays no part here
            import numba
            from numba import types
        except ImportError:
            _kernel = False
            return _kernel
        try:
            _pread = types.ExternalFunction(
                "pread", types.intp(types.intc, types.voidptr, types.uintp, types.int64))
            _kernel = numba.njit(nogil=True, cache=True)(_loop)
            probe = np.zeros(1, dtype=np.int64)
            _kernel(probe - 1, np.zeros(1, dtype=np.uint8), probe, probe, probe + 1, 1)   # compile
        except Exception:           # no pread symbol (Windows) or a numba that cannot build it
            _kernel = False
    return _kernel
