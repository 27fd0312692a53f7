"""A small communicator interface: rank, size, in-place allreduce of the flat buffer, broadcast.

Data-parallel training needs only four collectives (ARCHITECTURE.md, "Batch-mean convention"):

* ``allreduce_(grads)``  - one in-place SUM of the flat gradient buffer per step.  Each rank
  computes its share with ``denom = global batch size``, so the sum *is* the gradient of the
  global batch mean:  g = sum_r (1/B) sum_{i in shard r} grad l_i.
* ``bcast_(params, 0)``  - the initial weights (and optimizer state) from rank 0.
* ``allreduce_array_`` / ``allreduce_scalar`` - exact validation sums (loss sum, correct count,
  example count), so metrics are computed over the whole validation set.
* ``bcast_obj`` / ``barrier`` - small Python objects (a resume epoch), synchronisation.

`SerialComm` is the one-process implementation (every operation is the identity).
`MPIComm` wraps an mpi4py communicator and uses the buffer protocol (``Allreduce`` with
``MPI.IN_PLACE``), never pickling for arrays.  `get_comm()` picks MPIComm only when the
process was started by an MPI launcher, so serial users never import mpi4py.

Fail fast: under MPI an uncaught exception on one rank would leave the other ranks blocked in
``Allreduce`` forever (measured with MPICH 5: rank 1 hangs in MPI_Finalize, rank 0 in
Allreduce).  `MPIComm.install_excepthook()` (done by `get_comm`) prints the error naming the
rank and calls ``MPI_Abort``, which ends every rank within a second.
"""
from __future__ import annotations

import os
import socket
import sys
import time

import numpy as np

from ..backend import set_num_threads

# Environment variables set by MPI launchers for each rank they start:
# MPICH/Intel MPI hydra and Slurm's pmi/pmi2 plugin (PMI_*), Open MPI (OMPI_*), PMIx (PMIX_*).
MPI_ENV_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                "PMIX_RANK", "MPI_LOCALNRANKS")


class SerialComm:
    """One process: rank 0 of 1; every collective is the identity."""

    rank = 0
    size = 1
    in_collective = None  # name of the collective in progress (read by the watchdog)

    def allreduce_(self, buf):
        """Sum `buf` over all ranks, in place. Returns `buf`."""
        _check_flat(buf, "allreduce_")
        return buf

    def allreduce_array_(self, buf):
        """Sum an array of any shape over all ranks, in place. Returns `buf`."""
        return buf

    def allreduce_scalar(self, x):
        """Sum of the Python number `x` over all ranks (int stays int, else float)."""
        return x

    def bcast_(self, buf, root: int = 0):
        """Overwrite `buf` on every rank with root's copy, in place. Returns `buf`."""
        _check_root(root, self.size)
        return buf

    def bcast_obj(self, obj, root: int = 0):
        """Root's Python object on every rank (pickled; for small objects only)."""
        _check_root(root, self.size)
        return obj

    def barrier(self) -> None:
        return None

    def describe(self) -> str:
        return "1 process (no MPI)"

    def abort(self, message: str, code: int = 1) -> None:
        """Print `message` naming this process and end it at once (no cleanup)."""
        _write_stderr(f"gradfit: {message}\n")
        os._exit(code)


class MPIComm:
    """An mpi4py communicator behind the SerialComm interface.

    Arrays travel through the buffer protocol (no pickling).  A CuPy array is copied to the host
    and back, because the ``mpich`` wheel is not CUDA-aware.

    >>> comm = MPIComm()                      # doctest: +SKIP   (under mpiexec -n 2)
    >>> g = np.full(3, comm.rank + 1.0); comm.allreduce_(g)   # doctest: +SKIP
    array([3., 3., 3.])
    """

    def __init__(self, mpi_comm=None):
        from mpi4py import MPI  # imported here: serial users never load MPI

        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.in_collective = None
        # rank -> (pid, host): maps the "PID n RUNNING AT host" of an MPICH crash report to a rank.
        self.ranks = self.comm.allgather((os.getpid(), socket.gethostname()))

    # -- arrays ---------------------------------------------------------------------------------
    def allreduce_(self, buf):
        """Sum the flat 1-D buffer `buf` over all ranks, in place (MPI_IN_PLACE). Returns `buf`."""
        _check_flat(buf, "allreduce_")
        return self._inplace(buf, "Allreduce")

    def allreduce_array_(self, buf):
        """Sum a contiguous array of any shape over all ranks, in place. Returns `buf`."""
        return self._inplace(buf, "Allreduce")

    def bcast_(self, buf, root: int = 0):
        """Overwrite `buf` on every rank with root's copy, in place. Returns `buf`."""
        _check_root(root, self.size)
        return self._inplace(buf, "Bcast", root)

    def _inplace(self, buf, op, root=0):
        host = buf if isinstance(buf, np.ndarray) else _to_host(buf)
        if not host.flags.c_contiguous:
            raise ValueError(f"{op} needs a C-contiguous array, got strides {host.strides}; "
                             "pass np.ascontiguousarray(buf) and copy the result back")
        self.in_collective = op
        try:
            if op == "Allreduce":
                self.comm.Allreduce(self._MPI.IN_PLACE, host, op=self._MPI.SUM)
            else:
                self.comm.Bcast(host, root=root)
        finally:
            self.in_collective = None
        if host is not buf:
            buf[...] = _from_host(host)
        return buf

    # -- Python objects -------------------------------------------------------------------------
    def allreduce_scalar(self, x):
        """Sum of the Python number `x` over all ranks, through a 1-element buffer."""
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.number)):
            raise TypeError(f"allreduce_scalar takes an int or float, got {type(x).__name__} {x!r}")
        is_int = isinstance(x, (int, np.integer))
        buf = np.array([x], dtype=np.int64 if is_int else np.float64)
        self._inplace(buf, "Allreduce")
        return int(buf[0]) if is_int else float(buf[0])

    def bcast_obj(self, obj, root: int = 0):
        """Root's Python object on every rank (pickled; for small objects only)."""
        _check_root(root, self.size)
        self.in_collective = "bcast"
        try:
            return self.comm.bcast(obj, root=root)
        finally:
            self.in_collective = None

    def barrier(self) -> None:
        self.in_collective = "Barrier"
        try:
            self.comm.Barrier()
        finally:
            self.in_collective = None

    # -- faults ---------------------------------------------------------------------------------
    def describe(self) -> str:
        """One line: size, MPI library, and the pid@host of every rank."""
        lib = " ".join(self._MPI.Get_library_version().splitlines()[0].split())
        ranks = ", ".join(f"rank {r} pid {pid}@{host}" for r, (pid, host) in enumerate(self.ranks))
        return f"{self.size} MPI ranks ({lib}): {ranks}"

    def abort(self, message: str, code: int = 1) -> None:
        """Print `message` naming this rank, then MPI_Abort: every rank ends within seconds."""
        pid, host = os.getpid(), socket.gethostname()
        _write_stderr(f"gradfit: rank {self.rank} of {self.size} (pid {pid} on {host}): "
                      f"{message}\n")
        # MPICH's launcher tears the job down at once and can drop output it has not yet
        # forwarded (seen about once in 20 runs): give it a moment to pass the message on.
        time.sleep(0.3)
        try:
            self.comm.Abort(code)
        finally:  # Abort does not return; if the MPI library refuses, end this rank anyway
            os._exit(code)

    def install_excepthook(self) -> None:
        """Turn an uncaught exception on any rank into an MPI_Abort of the whole job.

        Without it the failing rank waits in MPI_Finalize and the others in Allreduce: a hang.
        """
        previous = sys.excepthook

        def hook(etype, value, tb):
            previous(etype, value, tb)
            self.abort(f"uncaught {etype.__name__}: {value}; aborting all "
                       f"{self.size} ranks", code=1)

        sys.excepthook = hook


def _check_flat(buf, what):
    if getattr(buf, "ndim", None) != 1:
        raise ValueError(f"{what} takes the flat 1-D buffer, got shape "
                         f"{getattr(buf, 'shape', type(buf).__name__)}; use allreduce_array_ "
                         "for other shapes")


def _check_root(root, size):
    if not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"root must be a rank in 0..{size - 1}, got {root!r}")


def _to_host(buf):
    if hasattr(buf, "get"):  # CuPy
        return np.ascontiguousarray(buf.get())
    raise TypeError(f"expected a numpy or cupy array, got {type(buf).__name__}")


def _from_host(host):
    import cupy  # only reached for CuPy buffers

    return cupy.asarray(host)


def _write_stderr(text: str) -> None:
    # os.write: unbuffered, safe from a watchdog thread while the main thread holds sys.stderr.
    try:
        os.write(2, text.encode(errors="replace"))
    except OSError:
        pass


def launched_by_mpi(environ=None) -> bool:
    """True when an MPI launcher (mpiexec, mpirun, srun --mpi=...) started this process."""
    env = os.environ if environ is None else environ
    return any(name in env for name in MPI_ENV_VARS)


def choose_comm_kind(environ=None) -> str:
    """'mpi' or 'serial': ``GRADFIT_MPI=1``/``0`` forces it, else `launched_by_mpi`."""
    env = os.environ if environ is None else environ
    forced = env.get("GRADFIT_MPI", "").strip()
    if forced in ("1", "0"):
        return "mpi" if forced == "1" else "serial"
    if forced:
        raise ValueError(f"GRADFIT_MPI={forced!r}: use 1 (force MPI), 0 (force one process) "
                         "or leave it unset (detect mpiexec)")
    return "mpi" if launched_by_mpi(env) else "serial"


_comm = None


def get_comm():
    """The communicator of this process: MPIComm under an MPI launcher, else SerialComm.

    Created once.  Under MPI it installs the abort-on-exception hook and rank 0 prints one line
    to stderr naming every rank's pid and host (an MPICH crash report names only the pid).
    """
    global _comm
    if _comm is None:
        if choose_comm_kind() == "serial":
            _comm = SerialComm()
        else:
            try:
                import mpi4py  # noqa: F401
            except ImportError as exc:
                found = ", ".join(n for n in MPI_ENV_VARS if n in os.environ) or "GRADFIT_MPI=1"
                raise ImportError(
                    f"this process was started by an MPI launcher ({found} is set) but mpi4py "
                    "is not installed: pip install 'gradfit[mpi]', "
                    "or set GRADFIT_MPI=0 to run every process on its own") from exc
            _comm = MPIComm()
            _comm.install_excepthook()
            threads = _threads_per_rank(_comm)
            if _comm.rank == 0 and os.environ.get("GRADFIT_MPI_QUIET", "") != "1":
                _write_stderr(f"gradfit: {_comm.describe()}; {threads}\n")
    return _comm


#: environment variables by which a user sets the thread counts of BLAS, OpenMP and numba
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _threads_per_rank(comm) -> str:
    """Give each rank its share of this node's CPUs, unless the user set a thread count.

    Without it every rank of ``mpiexec -n 2`` starts as many BLAS and numba threads as the
    node has cores, and the ranks' threads fight over them (measured: 4.5x slower than one
    process on 2 cores, see docs/parallel.md). Ranks per node come from MPI itself
    (MPI_COMM_TYPE_SHARED), so it holds under any launcher. Returns what was done, in words.
    """
    given = [v for v in THREAD_VARS if os.environ.get(v)]
    if given:
        return f"threads as set by {given[0]}={os.environ[given[0]]}"
    local = comm.comm.Split_type(comm._MPI.COMM_TYPE_SHARED).Get_size()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    threads = max(1, cpus // local)
    for name in THREAD_VARS:   # for libraries loaded later
        os.environ[name] = str(threads)
    set_num_threads(threads)
    return (f"{threads} thread(s) per rank ({cpus} CPUs / {local} ranks on a node; set "
            "OMP_NUM_THREADS to choose)")


def set_comm(comm) -> None:
    """Replace the process communicator (tests; a sub-communicator). None: choose again."""
    global _comm
    _comm = comm
