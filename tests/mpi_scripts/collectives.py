"""Run under mpiexec -n N: every collective of MPIComm checked against its closed form.

Each rank asserts, then prints "OK rank r of N"; the test counts those lines.
"""
import sys

import numpy as np

from gradfit.parallel.comm import MPIComm, get_comm

comm = get_comm()
assert isinstance(comm, MPIComm), f"expected MPIComm under mpiexec, got {type(comm).__name__}"
r, p = comm.rank, comm.size

# allreduce_: rank r contributes (r + 1) * [1, 2, ..., n]; the sum is p(p+1)/2 * [1..n]
# (small integers: exact in float32 and float64, whatever order MPI sums in).
for dtype in (np.float32, np.float64):
    n = 1001  # odd, not a multiple of p: catches chunking assumptions
    buf = (r + 1) * np.arange(1, n + 1, dtype=dtype)
    out = comm.allreduce_(buf)
    assert out is buf, "allreduce_ must work in place and return its argument"
    want = p * (p + 1) / 2 * np.arange(1, n + 1, dtype=np.float64)
    assert np.array_equal(buf, want.astype(dtype)), (dtype, buf[:5], want[:5])

# a view of a larger buffer (the flat gradient is a view in the loop): in place on the view
big = np.zeros(10, np.float64)
big[2:7] = r
comm.allreduce_(big[2:7])
assert np.all(big[2:7] == p * (p - 1) / 2) and big[0] == 0 and big[9] == 0, big

# allreduce_array_: any shape (validation sums)
stats = np.array([[r, 1.0], [2.0 * r, 0.5]])
comm.allreduce_array_(stats)
assert np.array_equal(stats, [[p * (p - 1) / 2, p], [p * (p - 1), 0.5 * p]]), stats

# allreduce_scalar keeps ints as ints
assert comm.allreduce_scalar(r + 1) == p * (p + 1) // 2
assert isinstance(comm.allreduce_scalar(1), int)
assert comm.allreduce_scalar(0.5) == 0.5 * p

# bcast_ from the last rank (not only 0)
root = p - 1
w = np.full(7, float(r), dtype=np.float32)
comm.bcast_(w, root=root)
assert np.all(w == root), w

assert comm.bcast_obj({"epoch": 3, "rank": r}, root=0) == {"epoch": 3, "rank": 0}
comm.barrier()

try:
    comm.allreduce_(np.zeros((2, 2)))
except ValueError as e:
    assert "allreduce_array_" in str(e)
else:
    raise AssertionError("a 2-D buffer must be refused by allreduce_")

assert len(comm.ranks) == p and "rank 0 pid" in comm.describe()
print(f"OK rank {r} of {p}", flush=True)
sys.exit(0)
