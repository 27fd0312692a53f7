"""Data-parallel step time on one machine: 2 ranks x 1 thread against 1 process x 2 threads.

    python benchmarks/data_parallel.py                     # batches 128 and 1024, ~1 minute
    python benchmarks/data_parallel.py --batches 128 --seconds 2 --ranks 2

The lecture's network 100-500-1000-2000-1 (relu, mse, Adam; 2,555,501 float32 parameters) on
synthetic data.  For each global batch B the script launches, as child processes:

  * ``1 x T``: one process, no MPI, every BLAS/numba thread count = T (= cores);
  * ``N x 1``: ``mpiexec -n N``, one thread per rank, each rank holding B/N examples per step;

and times each step of `gradfit.train.step.train_step` (the step ``fit`` takes) in three parts,
read from its ``mark`` clock:

    compute    forward + loss + backward over this rank's B/N rows
    Allreduce  the flat gradient + loss slot (incl. waiting for the slower rank), the finite check
    update     the optimizer step (Adam), the same on every rank

plus the Allreduce alone (after a barrier: the transfer without the waiting) and a whole
``model.fit`` epoch (samples/s from the wall clock).  Throughput = B / mean step time; the
target is N x 1 keeping >= 85% of 1 x T's.  Then a PROJECTION (ring-allreduce cost model,
gradfit/bench/allreduce.py) of the step time at 8 and 64 nodes on 10 and 100 Gb/s, from the
measured per-node step (1 x T) and the gradient length.  Printed: versions, thread counts, the
BLAS library and the kernel it chose, the load average before and after.
"""
import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import numpy as np  # noqa: E402

from gradfit.bench import allreduce as bench  # noqa: E402
from gradfit.parallel import launch  # noqa: E402
from gradfit.train.step import train_step  # noqa: E402
from gradfit.parallel.comm import MPI_ENV_VARS, choose_comm_kind  # noqa: E402

LAYERS = (100, 500, 1000, 2000, 1)
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: this project's environment exports them for an old
# OpenBLAS.  They override the CPU detection of the OpenBLAS bundled with current numpy wheels
# (forced core type and cache size instead of the kernel and blocking numpy picks for this CPU),
# which the lead found slows current numpy; a benchmark must measure numpy as a user's machine
# runs it.  They are removed for this benchmark's own child processes only (the parent
# environment is untouched) and the kernel actually chosen is printed.  (On the Zen 4 of the
# recorded run, forcing Haswell was not slower for single-thread GEMMs of these shapes, see
# docs/parallel.md: the point is measuring the default, not a speed claim for every CPU.)
STRIPPED_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="128,1024", help="global batch sizes (default 128,1024)")
    ap.add_argument("--ranks", type=int, default=2, help="N of the N x 1 run (default 2)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="T of the 1 x T run (default: cores)")
    ap.add_argument("--seconds", type=float, default=4.0,
                    help="timed seconds per batch size for the per-part steps (default 4)")
    ap.add_argument("--fit-steps", type=int, default=0,
                    help="steps of the whole-fit epoch (default: as many as --seconds allows)")
    ap.add_argument("--layers", default=",".join(map(str, LAYERS)))
    ap.add_argument("--allreduce-max-kib", type=int, default=16384,
                    help="largest buffer of the Allreduce-by-size fit (default 16384 = 16 MiB)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------- the worker side

def build(layers, seed=0):
    import gradfit

    gradfit.set_random_seed(seed)
    net = [gradfit.Input(shape=(layers[0],))]
    net += [gradfit.Dense(w, activation="relu") for w in layers[1:-1]]
    net.append(gradfit.Dense(layers[-1]))
    model = gradfit.Sequential(net, dtype="float32")
    model.compile(optimizer=gradfit.optimizers.Adam(learning_rate=1e-4), loss="mse")
    return model


def per_rank(comm, values):
    """(ranks x k) array of every rank's `values`, through the SUM-only interface."""
    m = np.zeros((comm.size, len(values)))
    m[comm.rank] = values
    return comm.allreduce_array_(m)


def time_parts(model, comm, x, y, batch, seconds):
    """Mean seconds of compute / Allreduce / update / whole step, and the Allreduce alone."""
    b = batch // comm.size
    shards = [(x[s + comm.rank * b: s + (comm.rank + 1) * b], y[s + comm.rank * b: s + (comm.rank + 1) * b])
              for s in range(0, len(x) - batch + 1, batch)]
    g = model.flat.grad_with_loss

    def step(i):
        xb, yb = shards[i % len(shards)]
        marks = [("start", time.perf_counter())]
        train_step(model, model.train_state, xb, yb, batch, offset=comm.rank * b,
                   mark=lambda name: marks.append((name, time.perf_counter())))
        t = dict(marks)
        t0, t3 = marks[0][1], marks[-1][1]
        t2 = t["Allreduce, weight penalties, finite check"]
        t1 = marks[-3][1]   # the last backward mark
        return t1 - t0, t2 - t1, t3 - t2, t3 - t0

    for i in range(3):  # warm-up: buffers, page faults, numba's cached kernels, BLAS threads
        step(i)
    comm.barrier()
    t0 = time.perf_counter()
    for i in range(2):
        step(i)
    calib = (time.perf_counter() - t0) / 2
    steps = comm.bcast_obj(int(max(5, min(500, seconds / max(calib, 1e-6)))), root=0)
    comm.barrier()
    rows = np.array([step(i) for i in range(steps)])
    mean = rows.mean(axis=0)
    # the Allreduce alone: a barrier first, so no rank waits for another's compute
    alone = []
    for _ in range(max(5, min(50, steps))):
        comm.barrier()
        t0 = time.perf_counter()
        comm.allreduce_(g)
        alone.append(time.perf_counter() - t0)
    ranks = per_rank(comm, list(mean) + [float(np.median(alone))])
    return {"steps": steps, "compute_s": ranks[:, 0].tolist(), "allreduce_s": ranks[:, 1].tolist(),
            "update_s": ranks[:, 2].tolist(), "step_s": ranks[:, 3].tolist(),
            "allreduce_alone_s": ranks[:, 4].tolist()}


def time_fit(model, x, y, batch, steps):
    n = steps * batch
    t0 = time.perf_counter()
    model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True)
    return {"fit_steps": steps, "fit_s": time.perf_counter() - t0}


def environment(comm):
    import gradfit.backend as backend

    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cores": os.cpu_count(),
            "cpu": _cpu_model(), "ranks": comm.size,
            "threads_env": {k: os.environ.get(k, "unset") for k in launch.THREAD_VARS},
            "stripped_env": {k: os.environ.get(k, "unset") for k in STRIPPED_VARS},
            "blas": backend.blas_info()}
    try:
        import numba
        info["numba"] = f"{numba.__version__}, {numba.get_num_threads()} threads"
    except ImportError:
        info["numba"] = "not installed"
    if comm.size > 1:
        import mpi4py
        from mpi4py import MPI
        info["mpi"] = (f"mpi4py {mpi4py.__version__}, "
                       + " ".join(MPI.Get_library_version().splitlines()[0].split()))
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def worker(a):
    from gradfit.parallel import get_comm

    comm = get_comm()
    layers = tuple(int(v) for v in a.layers.split(","))
    model = build(layers)
    out = {"env": environment(comm), "n_params": bench.mlp_param_count(layers), "batches": {}}
    data = np.random.default_rng(0)
    for batch in (int(b) for b in a.batches.split(",")):
        if batch % comm.size:
            raise ValueError(f"global batch {batch} does not divide by {comm.size} ranks")
        fit_steps = a.fit_steps
        n = batch * max(4, fit_steps or 0, 8)
        x = data.standard_normal((n, layers[0])).astype(np.float32)
        y = (x[:, :1] * 0.5 + np.sin(x[:, 1:2])).astype(np.float32)
        model.prepare(x)
        model.train_state.init_optimizer(model)
        res = time_parts(model, comm, x, y, batch, a.seconds)
        if not fit_steps:
            fit_steps = int(max(4, min(64, a.seconds / 2 / max(res["step_s"][0], 1e-6))))
            fit_steps = comm.bcast_obj(fit_steps, root=0)
        if fit_steps * batch > n:
            x = data.standard_normal((fit_steps * batch, layers[0])).astype(np.float32)
            y = (x[:, :1] * 0.5 + np.sin(x[:, 1:2])).astype(np.float32)
        res.update(time_fit(model, x, y, batch, fit_steps))
        res["fit_s"] = float(per_rank(comm, [res["fit_s"]]).max())
        out["batches"][str(batch)] = res
    if comm.size > 1:  # Allreduce by size, for the latency / bandwidth of THIS machine
        sizes = [4 ** k for k in range(3, 13) if 4 ** k <= max(a.allreduce_max_kib * 1024, 256)]
        rows = bench.measure_allreduce(comm, sizes, min_time=0.05)
        out["lat_s"], out["bw_Bps"] = bench.fit_latency_bandwidth(rows, comm.size)
        out["allreduce_rows"] = rows
    if comm.rank == 0:
        print("RESULT " + json.dumps(out), flush=True)
    return 0


# ---------------------------------------------------------------------------- the driver side

def child_env(threads):
    env = launch.thread_env(threads, {k: v for k, v in os.environ.items()
                                      if k not in MPI_ENV_VARS and k != "GRADFIT_MPI"})
    for name in STRIPPED_VARS:  # see STRIPPED_VARS: for the children only
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["GRADFIT_MPI_QUIET"] = "1"
    return env


def run_child(a, ranks, threads):
    args = [__file__, "--worker", "--batches", a.batches, "--seconds", str(a.seconds),
            "--fit-steps", str(a.fit_steps), "--layers", a.layers,
            "--allreduce-max-kib", str(a.allreduce_max_kib)]
    cmd = ([sys.executable, *args] if ranks == 1 else launch.python_command(ranks, *args))
    code, out, why = launch.run(cmd, env=child_env(threads), timeout=1800)
    found = re.search(r"^RESULT (.*)$", out, re.M)
    if code != 0 or not found:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (status {code}):\n{out}\n{why or ''}")
    return json.loads(found.group(1))


def ms(x):
    return f"{x * 1e3:.1f}"


def report(a, single, multi, loads):
    p, t = multi["env"]["ranks"], single["env"]["threads_env"]["OMP_NUM_THREADS"]
    e = single["env"]
    print(f"machine: {e['cpu']}, {e['cores']} cores, {e['machine']}")
    print(f"python {e['python']}, numpy {e['numpy']}, numba {e['numba']}; {multi['env']['mpi']}")
    for name, run in (("1 x " + t, single), (f"{p} x 1", multi)):
        env = run["env"]
        blas = "; ".join(f"{b.get('internal_api')} {b.get('version')} kernel {b.get('architecture')}"
                         f", {b.get('num_threads')} threads" for b in env["blas"])
        print(f"  {name}: {', '.join(f'{k}={v}' for k, v in env['threads_env'].items())}; {blas}; "
              f"{', '.join(f'{k}={v}' for k, v in env['stripped_env'].items())}")
    print(f"load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f}")
    print(f"network {a.layers}: {single['n_params']:,} float32 parameters "
          f"({single['n_params'] * 4 / 2**20:.1f} MiB of gradient per Allreduce)\n")

    print("MEASURED, mean per step in ms (N x 1: the slowest rank's compute; Allreduce includes "
          "waiting for it)\n")
    print("| configuration | global batch | steps | compute | Allreduce | (alone) | update | step "
          "| samples/s | vs 1 x T | whole fit samples/s | vs 1 x T |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = {}
    for batch in a.batches.split(","):
        s, m = single["batches"][batch], multi["batches"][batch]
        b = int(batch)
        thr_s, thr_m = b / s["step_s"][0], b / max(m["step_s"])
        fit_s = b * s["fit_steps"] / s["fit_s"]
        fit_m = b * m["fit_steps"] / m["fit_s"]
        ratios[b] = (thr_m / thr_s, fit_m / fit_s)
        for name, r, thr, fit, rel in ((f"1 process x {t} threads", s, thr_s, fit_s, None),
                                       (f"{p} ranks x 1 thread", m, thr_m, fit_m, ratios[b])):
            rel_txt = ("100%", "100%") if rel is None else (f"{100 * rel[0]:.0f}%", f"{100 * rel[1]:.0f}%")
            alone = "-" if rel is None else ms(max(r["allreduce_alone_s"]))
            print(f"| {name} | {b} | {r['steps']} | {ms(max(r['compute_s']))} | "
                  f"{ms(max(r['allreduce_s']))} | {alone} | {ms(max(r['update_s']))} | "
                  f"{ms(max(r['step_s']))} | {thr:,.0f} | {rel_txt[0]} | {fit:,.0f} | {rel_txt[1]} |")
    if p > 1:
        print("\nper-rank compute (ms): " + "; ".join(
            f"batch {b}: " + ", ".join(ms(c) for c in multi["batches"][b]["compute_s"])
            for b in a.batches.split(",")))
    for b, (r, rf) in ratios.items():
        verdict = "MET" if r >= 0.85 else "MISSED"
        print(f"batch {b}: {p} x 1 keeps {100 * r:.0f}% of 1 x {t} throughput per step "
              f"({100 * rf:.0f}% in a whole fit): target >= 85% {verdict}")

    if "lat_s" in multi:
        print(f"\nAllreduce on this machine ({p} ranks, shared memory), fitted to "
              f"{len(multi['allreduce_rows'])} sizes {bench.format_bytes(multi['allreduce_rows'][0]['bytes'])}"
              f"..{bench.format_bytes(multi['allreduce_rows'][-1]['bytes'])}: latency "
              f"{multi['lat_s'] * 1e6:.1f} us, bandwidth {multi['bw_Bps'] / 1e9:.2f} GB/s; model for "
              f"the {single['n_params'] * 4 / 2**20:.1f} MiB gradient: "
              f"{ms(bench.ring_allreduce_seconds(single['n_params'], p, multi['bw_Bps'], multi['lat_s']))} ms")
    print("\nThe projections below take one node = this machine running 1 x T, its measured step "
          "(compute + update) as the per-node compute, and add the ring Allreduce of the gradient "
          "over the network (nominal rate, ASSUMED latency: "
          f"{', '.join(f'{k} Gb/s {v * 1e6:.0f} us' for k, v in bench.ASSUMED_LATENCY_S.items())}).\n")
    n = single["n_params"]
    for batch in a.batches.split(","):
        s = single["batches"][batch]
        comp = s["compute_s"][0] + s["update_s"][0]
        print(f"per-node batch {batch}:")
        print(bench.format_projection(bench.project_scaling(comp, n, scaling="weak"), comp, n,
                                      "weak"), "\n")
    big = a.batches.split(",")[-1]
    s = single["batches"][big]
    comp = s["compute_s"][0] + s["update_s"][0]
    print(f"global batch {big} split over the nodes (assumes compute falls as 1/p, which a per-node "
          "batch of 16 or 2 examples will not do: optimistic):")
    print(bench.format_projection(bench.project_scaling(comp, n, scaling="strong"), comp, n,
                                  "strong"))
    return ratios


def load1():
    return os.getloadavg()[0]


def main(argv=None):
    a = parse(argv)
    if a.worker:
        return worker(a)
    if choose_comm_kind() == "mpi":
        raise SystemExit("run this script without mpiexec: it launches 'mpiexec -n N' itself")
    before = load1()
    single = run_child(a, 1, a.threads)
    multi = run_child(a, a.ranks, 1)
    ratios = report(a, single, multi, (before, load1()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"single": single, "multi": multi, "load": [before, load1()],
                       "ratios": {str(k): v for k, v in ratios.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
