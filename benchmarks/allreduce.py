"""Allreduce bandwidth by buffer size on this machine, and a projection to 8/64 nodes.

    python benchmarks/allreduce.py                 # relaunches itself: mpiexec -n 2, 1 thread/rank
    mpiexec -n 2 python benchmarks/allreduce.py    # the same, launched by hand
    python benchmarks/allreduce.py -n 3 --compute-ms 12.5 --params 669706

Prints versions and thread counts, the MEASURED Allreduce table (time per op, algbw, busbw), the
latency/bandwidth fitted to it, and the PROJECTED step time and efficiency at 8 and 64 nodes on
10 and 100 Gb/s (ring-allreduce cost model; see gradfit/bench/allreduce.py).  Without
--compute-ms the compute time is a numpy proxy of one Dense-MLP step (forward + backward).
"""
import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from gradfit.bench import allreduce as bench  # noqa: E402
from gradfit.parallel import launch  # noqa: E402
from gradfit.parallel.comm import choose_comm_kind, get_comm  # noqa: E402


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2, help="ranks when relaunching (default 2)")
    ap.add_argument("--threads-per-rank", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.15,
                    help="seconds per trial per size (3 trials)")
    ap.add_argument("--max-mib", type=float, default=64, help="largest buffer (MiB)")
    ap.add_argument("--layers", default="784,512,512,10", help="MLP for the compute proxy")
    ap.add_argument("--batch", type=int, default=128, help="per-rank batch for the proxy")
    ap.add_argument("--compute-ms", type=float, default=None, help="measured compute per step")
    ap.add_argument("--params", type=int, default=None, help="gradient length (default: layers)")
    return ap.parse_args(argv)


def versions(comm):
    from threadpoolctl import threadpool_info

    lines = [f"python {platform.python_version()}, numpy {np.__version__}, "
             f"{platform.machine()}, {os.cpu_count()} cores"]
    if comm.size > 1 or choose_comm_kind() == "mpi":
        import mpi4py
        from mpi4py import MPI
        lib = " ".join(MPI.Get_library_version().splitlines()[0].split())
        lines.append(f"mpi4py {mpi4py.__version__}, {lib}, {comm.size} ranks, "
                     f"thread level {MPI.Query_thread()}")
    env = {k: os.environ.get(k, "unset") for k in launch.THREAD_VARS}
    lines.append("threads per rank: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    for pool in threadpool_info():
        lines.append(f"  {pool.get('internal_api')} ({pool.get('user_api')}): "
                     f"{pool.get('num_threads')} threads")
    return "\n".join(lines)


def main(argv=None):
    a = parse(argv)
    if choose_comm_kind() == "serial":  # not under mpiexec: relaunch this script
        cmd = launch.python_command(a.n, __file__, *(argv if argv is not None else sys.argv[1:]))
        code, _, why = launch.run(cmd, env=launch.thread_env(a.threads_per_rank), stream=True)
        if why:
            print(why)
        return code
    comm = get_comm()
    layers = tuple(int(v) for v in a.layers.split(","))
    sizes = [s for s in bench.DEFAULT_SIZES if s <= a.max_mib * 2**20]
    rows = bench.measure_allreduce(comm, sizes, min_time=a.min_time)
    compute_s = a.compute_ms / 1e3 if a.compute_ms else bench.mlp_step_seconds(layers, a.batch)
    if comm.rank != 0:
        return 0
    n_params = a.params or bench.mlp_param_count(layers)
    print(versions(comm), "\n")
    print(bench.format_measurements(rows, comm.size), "\n")
    if comm.size > 1:
        lat, bw = bench.fit_latency_bandwidth(rows, comm.size)
        print(f"fitted to the table, equation (1): latency {lat * 1e6:.1f} us, "
              f"bandwidth {bw / 1e9:.2f} GB/s (between ranks of THIS machine: shared memory)\n")
    src = "given (--compute-ms)" if a.compute_ms else \
        f"numpy proxy, MLP {a.layers}, batch {a.batch}, all {comm.size} ranks computing at once"
    print(f"compute per step: {compute_s * 1e3:.2f} ms ({src})\n")
    for scaling in ("weak", "strong"):
        proj = bench.project_scaling(compute_s, n_params, scaling=scaling)
        print(bench.format_projection(proj, compute_s, n_params, scaling), "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
