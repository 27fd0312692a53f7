"""Allreduce bandwidth by buffer size, and the ring-allreduce cost model for projections.

Ring allreduce (Patarasuk & Yuan 2009; the NCCL/MPICH large-message algorithm) of n values of
`bytes_per_value` bytes on p ranks: a reduce-scatter then an allgather, each p-1 steps moving
1/p of the buffer, so

    T(p, n) = 2 (p-1)/p * n * bytes / bandwidth  +  2 (p-1) * latency          (1)

(bandwidth in bytes/s per link, latency per message).  The "bus bandwidth"
busbw = 2 (p-1)/p * n * bytes / T is the link rate a measurement achieved; it is comparable
across p (NCCL-tests' convention), where algbw = n * bytes / T is not.

Data-parallel step time with one Allreduce after backward, no overlap:

    step(p) = compute(p) + T(p, n_params)
    weak scaling  (per-rank batch fixed):  compute(p) = compute(1),  efficiency = compute / step
    strong scaling (global batch fixed):   compute(p) = compute(1)/p,
                                           efficiency = compute(1) / (p step)

`project_scaling` evaluates this at 8 and 64 nodes on 10 and 100 Gb/s.  It is a PROJECTION from a
model and stated assumptions, not a measurement.
"""
from __future__ import annotations

import time

import numpy as np

# Assumed per-message latencies for the projected networks: MPI over TCP on 10 Gb/s Ethernet is
# typically tens of microseconds; 100 Gb/s fabrics (InfiniBand, RoCE) with RDMA a few.
ASSUMED_LATENCY_S = {10: 30e-6, 100: 3e-6}
DEFAULT_SIZES = tuple(4 ** k for k in range(2, 14))  # 16 B ... 64 MiB


def ring_allreduce_seconds(n_values, p, bandwidth_Bps, latency_s, bytes_per_value=4):
    """Equation (1): ring-allreduce time of `n_values` values on `p` ranks (0 for p = 1)."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"p (ranks) must be an int >= 1, got {p!r}")
    for name, v in (("n_values", n_values), ("bandwidth_Bps", bandwidth_Bps),
                    ("latency_s", latency_s), ("bytes_per_value", bytes_per_value)):
        if not (isinstance(v, (int, float, np.number)) and v >= 0) or (
                name == "bandwidth_Bps" and v == 0):
            raise ValueError(f"{name} must be a number >= 0 (bandwidth > 0), got {v!r}")
    return 2 * (p - 1) / p * n_values * bytes_per_value / bandwidth_Bps + 2 * (p - 1) * latency_s


def gbps_to_Bps(gbps):
    """Network rate in Gb/s (10**9 bits/s) -> bytes/s."""
    return gbps * 1e9 / 8


def measure_allreduce(comm, sizes_bytes=DEFAULT_SIZES, min_time=0.1, max_iters=1000, trials=3,
                      dtype=np.float32):
    """Time in-place Allreduce (SUM) of float32 buffers of each size on `comm`.

    Per size: a warm-up, a calibration of 5 ops, then a fixed count of ops lasting about
    `min_time` seconds (at most `max_iters`; rank 0 decides it, so all ranks run the same count
    and no extra collective sits inside the timed loop), repeated `trials` times.  Returns rows
    ``{"bytes", "iters", "seconds", "algbw_Bps", "busbw_Bps"}`` where seconds is the mean per op
    of a trial, max over ranks, best (min) over trials: the best trial is the one least disturbed
    by other processes on a shared machine.  Call on every rank.
    """
    p = comm.size
    itemsize = np.dtype(dtype).itemsize
    rows = []
    for size in sizes_bytes:
        n = max(1, int(size) // itemsize)
        buf = np.ones(n, dtype=dtype)
        comm.allreduce_(buf)  # warm-up (connection set-up, page faults)
        comm.barrier()
        t0 = time.perf_counter()
        for _ in range(5):
            comm.allreduce_(buf)
        calib = (time.perf_counter() - t0) / 5
        iters = comm.bcast_obj(int(min(max_iters, max(1, min_time / max(calib, 1e-9)))), root=0)
        per_op = float("inf")
        for _ in range(trials):
            comm.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                comm.allreduce_(buf)
            per_op = min(per_op, _allmax(comm, (time.perf_counter() - t0) / iters))
        nbytes = n * itemsize
        rows.append({"bytes": nbytes, "iters": iters, "seconds": per_op,
                     "algbw_Bps": nbytes / per_op,
                     "busbw_Bps": 2 * (p - 1) / p * nbytes / per_op if p > 1 else float("nan")})
    return rows


def _allmax(comm, x):
    """max of `x` over ranks with the SUM-only interface: a one-hot vector, summed."""
    v = np.zeros(comm.size)
    v[comm.rank] = x
    return float(comm.allreduce_array_(v).max())


def fit_latency_bandwidth(rows, p):
    """Latency (s) and bandwidth (bytes/s) of equation (1) fitted to `measure_allreduce` rows.

    Least squares of T = a + b * bytes in relative error (each row weighted by 1/T, so the small
    messages fix `a` and the large ones fix `b`), then latency = a / (2(p-1)),
    bandwidth = 2(p-1)/p / b.
    """
    if p < 2:
        raise ValueError(f"a latency/bandwidth fit needs p >= 2 ranks, got p={p}")
    x = np.array([r["bytes"] for r in rows], dtype=np.float64)
    t = np.array([r["seconds"] for r in rows], dtype=np.float64)
    design = np.stack([np.ones_like(x), x], axis=1) / t[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    a, b = max(a, 0.0), max(b, 1e-30)
    return a / (2 * (p - 1)), 2 * (p - 1) / p / b


def project_scaling(compute_s, n_params, nodes=(8, 64), gbps=(10, 100), latency_s=None,
                    bytes_per_value=4, scaling="weak"):
    """PROJECTED step time and scaling efficiency from the ring-allreduce model (no overlap).

    Args:
        compute_s: measured forward+backward+update seconds per step on one node.
        n_params: number of values Allreduced per step (the flat gradient length).
        latency_s: per-message latency; None uses ASSUMED_LATENCY_S for each network, a number
            applies to every network, a dict maps Gb/s -> seconds.
        scaling: "weak" (per-node batch fixed) or "strong" (global batch fixed).
    Returns rows ``{"nodes", "gbps", "latency_s", "allreduce_s", "step_s", "efficiency"}``.
    """
    if not compute_s > 0:
        raise ValueError(f"compute_s must be a measured time > 0 seconds, got {compute_s!r}")
    if scaling not in ("weak", "strong"):
        raise ValueError(f"scaling must be 'weak' or 'strong', got {scaling!r}")
    rows = []
    for rate in gbps:
        lat = (ASSUMED_LATENCY_S.get(rate, 10e-6) if latency_s is None
               else latency_s[rate] if isinstance(latency_s, dict) else latency_s)
        for p in nodes:
            comm_s = ring_allreduce_seconds(n_params, p, gbps_to_Bps(rate), lat, bytes_per_value)
            comp = compute_s if scaling == "weak" else compute_s / p
            step = comp + comm_s
            eff = comp / step if scaling == "weak" else compute_s / (p * step)
            rows.append({"nodes": p, "gbps": rate, "latency_s": lat, "allreduce_s": comm_s,
                         "step_s": step, "efficiency": eff})
    return rows


def format_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def format_measurements(rows, p):
    """Markdown table of `measure_allreduce` rows."""
    out = [f"Allreduce (SUM, float32, in place) on {p} ranks - MEASURED (mean per op of the best "
           "trial, slowest rank)",
           "", "| buffer | iters | time per op | algbw | busbw |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {format_bytes(r['bytes'])} | {r['iters']} | {r['seconds'] * 1e6:.1f} us | "
                   f"{r['algbw_Bps'] / 1e9:.3f} GB/s | {r['busbw_Bps'] / 1e9:.3f} GB/s |")
    return "\n".join(out)


def format_projection(rows, compute_s, n_params, scaling="weak"):
    """Markdown table of `project_scaling` rows, labelled as a projection with its assumptions."""
    out = [f"PROJECTION (ring-allreduce cost model, not a measurement): {scaling} scaling, "
           f"compute {compute_s * 1e3:.2f} ms/step measured on one node, "
           f"{n_params:,} float32 gradients, no compute/communication overlap, nominal link rate",
           "", "| nodes | network | latency (assumed) | Allreduce | step | efficiency |",
           "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['nodes']} | {r['gbps']:g} Gb/s | {r['latency_s'] * 1e6:.0f} us | "
                   f"{r['allreduce_s'] * 1e3:.2f} ms | {r['step_s'] * 1e3:.2f} ms | "
                   f"{100 * r['efficiency']:.0f}% |")
    return "\n".join(out)


def mlp_step_seconds(layers=(784, 512, 512, 10), batch=128, repeats=20, dtype=np.float32, seed=0):
    """A PROXY for one Dense-MLP training step: forward + backward matmuls in numpy (median s).

    Per layer: forward z = a W + b; backward dW = a^T d, db = sum d, d_prev = d W^T.  Use the
    real model's measured step when available; this is for the benchmark without a model.
    """
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((i, o)).astype(dtype) * 0.01 for i, o in zip(layers, layers[1:])]
    x = rng.standard_normal((batch, layers[0])).astype(dtype)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        acts = [x]
        for w in ws:
            acts.append(np.maximum(acts[-1] @ w, 0))
        d = acts[-1]
        for w, a in zip(reversed(ws), reversed(acts[:-1])):
            _ = a.T @ d, d.sum(0)
            d = d @ w.T
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def mlp_param_count(layers):
    """Weights + biases of a Dense stack: sum (n_in + 1) n_out."""
    return int(sum((i + 1) * o for i, o in zip(layers, layers[1:])))
