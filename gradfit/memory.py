"""How much memory a fully connected network needs: the slide "The problem of learning in
large networks" as a tool.

For layer sizes ``n_0, n_1, ..., n_L`` (input first) and batch size ``B``:

* parameters      ``P = sum_l (n_{l-1} * n_l + n_l)``  (kernel + bias of every Dense layer);
  the lecture's 100-500-1000-2000-1 network has ``P = 2,555,501``.
* gradients       ``P`` values (the one flat gradient buffer).
* Hessian         ``P^2`` values; in float64 ``P^2 * 8`` bytes = 52.2 TB for the lecture's
  network, which is why second-order methods are out of reach and we use first-order ones.
* optimizer state ``k * P`` values, ``k`` the number of parameter-sized state arrays
  (``OPTIMIZER_STATE`` below: SGD 0, momentum 1, Adagrad 1, RMSprop 1-3, Adadelta 2,
  Adam 2, AMSGrad 3).
* activations     kept from the forward pass for the backward pass: the input of every
  Dense layer and the output of every activation, ``B * sum_l n_l`` values.  During the
  backward pass two delta arrays of at most ``B * max_l n_l`` values are alive on top.

* second-order methods (``second_order_report``), float64, n = P weights, m examples with
  d outputs each:  Newton's Hessian and Gauss-Newton's / Levenberg-Marquardt's J^T J are
  n x n (``n^2 * 8`` bytes; for Newton and LM a second n x n array is alive while it is
  factorised), the
  Jacobian J is (m d) x n when formed at once (gradfit sums it in row blocks), BFGS keeps an
  n x n inverse Hessian, L-BFGS a history of ``2 * history * n`` values, Newton-CG a few
  vectors of n, Adam ``2 n``.  `gradfit.curvature.budget` refuses a method whose peak does
  not fit in the memory available, before allocating it.

Bytes use decimal units (1 TB = 10^12 B), as the lecture does.

Example::

    >>> from gradfit.memory import memory_report
    >>> memory_report([100, 500, 1000, 2000, 1])["parameters"]
    2555501
"""
from __future__ import annotations

import os

import numpy as np

#: optimizer name -> number of parameter-sized state arrays it keeps.
OPTIMIZER_STATE = {
    "sgd": 0,
    "sgd (momentum / nesterov)": 1,
    "adagrad": 1,
    "rmsprop": 1,
    "rmsprop (momentum or centered)": 2,
    "rmsprop (momentum + centered)": 3,
    "adadelta": 2,
    "adam / adamw": 2,
    "adam (amsgrad)": 3,
}

_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))

#: second-order method -> (its large matrix, n x n float64 arrays alive at its peak).  The
#: second array of Newton and LM is the factorised (shifted or damped) working copy, which
#: they need because a rejected trial retries with another shift or mu; Gauss-Newton
#: factorises its matrix where it lies (Cholesky in place,
#: `gradfit.optimizers.second_order.linalg`); BFGS updates its inverse Hessian in place
#: (rank-one BLAS updates).
SECOND_ORDER = {
    "newton": ("the Hessian H", 2),
    "gauss_newton": ("JᵀJ", 1),
    "lm": ("JᵀJ", 2),
    "bfgs": ("the inverse Hessian", 1),
}
#: bytes of Jacobian rows that Gauss-Newton / LM form at once (`gradfit.curvature.jacobian`;
#: a block is at least one example's rows)
JACOBIAN_BLOCK_BYTES = 1 << 25
#: flat vectors of n values that Newton-CG keeps (x, gradient, CG iterate, residual,
#: direction, H p)
NEWTON_CG_VECTORS = 6


def human_bytes(n: float) -> str:
    """``52244690256024 -> '52.2 TB'`` (decimal units)."""
    for scale, unit in _UNITS:
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _check_sizes(layer_sizes):
    try:
        sizes = [int(s) for s in layer_sizes]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"layer_sizes must be a sequence of positive integers, got {layer_sizes!r}"
        ) from exc
    if len(sizes) < 2 or any(s < 1 for s in sizes) or any(
        float(s) != float(o) for s, o in zip(sizes, layer_sizes)
    ):
        raise ValueError(
            f"layer_sizes must be at least two positive integers (input first, "
            f"e.g. 100 500 1000 2000 1), got {list(layer_sizes)!r}"
        )
    return sizes


def method_bytes(method: str, n: int, examples: int | None = None, outputs: int = 1,
                 history: int = 10, block_bytes: int = JACOBIAN_BLOCK_BYTES) -> dict:
    """Float64 bytes that second-order `method` needs for n weights (module docstring).

    Returns ``{"method", "matrix" (what it is), "matrix_bytes", "peak_bytes", "arithmetic"}``;
    for Gauss-Newton / LM also ``"jacobian_bytes"``: the whole (examples * outputs) x n
    Jacobian (None without `examples`), and the peak counts one row block of it
    (``block_bytes``, or the whole Jacobian when smaller; without `examples`, one block).
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of weights must be a positive integer, got {n!r}")
    if method in SECOND_ORDER:
        matrix, copies = SECOND_ORDER[method]
        one = n * n * 8
        row = {"method": method, "matrix": f"{matrix} of {n:,}² float64",
               "matrix_bytes": one, "peak_bytes": copies * one,
               "arithmetic": f"{n:,}² x 8 B = {human_bytes(one)}"}
        if method in ("gauss_newton", "lm"):
            jac = None if examples is None else int(examples) * int(outputs) * n * 8
            row["jacobian_bytes"] = jac
            row["peak_bytes"] += block_bytes if jac is None else min(jac, block_bytes)
        return row
    if method == "lbfgs":
        size = 2 * int(history) * n * 8
        return {"method": method, "matrix": f"a history of 2 x {history} x {n:,} float64",
                "matrix_bytes": size, "peak_bytes": size + NEWTON_CG_VECTORS * n * 8,
                "arithmetic": f"2 x {history} x {n:,} x 8 B = {human_bytes(size)}"}
    if method in ("newton_cg", "adam"):
        k = NEWTON_CG_VECTORS if method == "newton_cg" else 2
        size = k * n * 8
        return {"method": method, "matrix": f"{k} vectors of {n:,} float64",
                "matrix_bytes": size, "peak_bytes": size,
                "arithmetic": f"{k} x {n:,} x 8 B = {human_bytes(size)}"}
    raise ValueError(f"unknown method {method!r}; valid: "
                     f"{', '.join(sorted([*SECOND_ORDER, 'lbfgs', 'newton_cg', 'adam']))}")


def second_order_report(n: int, examples: int | None = None, outputs: int = 1,
                        history: int = 10) -> list[dict]:
    """`method_bytes` of every method, in the lecture's order (Newton first, Adam last)."""
    return [method_bytes(m, n, examples, outputs, history)
            for m in ("newton", "gauss_newton", "lm", "bfgs", "lbfgs", "newton_cg", "adam")]


def memory_report(layer_sizes, batch_sizes=(1, 32, 128, 1024), dtype="float32") -> dict:
    """Memory needed to train the Dense network ``layer_sizes`` (see the module docstring).

    Returns a JSON-able dict: ``parameters``, ``itemsize``, ``parameter_bytes``,
    ``gradient_bytes``, ``hessian`` (entries, bytes in float64, the arithmetic as text),
    ``optimizer_state`` (name -> {arrays, bytes}), ``activations`` (one row per batch size:
    values kept, bytes kept, peak bytes during backward).
    """
    sizes = _check_sizes(layer_sizes)
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError as exc:
        raise TypeError(f"dtype must be a numpy float dtype such as 'float32', got {dtype!r}") from exc
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a float dtype ('float32' or 'float64'), got {dtype!r}")
    batches = [int(b) for b in batch_sizes]
    if not batches or any(b < 1 for b in batches):
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)!r}")

    layers = [(a * b + b, f"{a}x{b} + {b}") for a, b in zip(sizes[:-1], sizes[1:])]
    p = sum(n for n, _ in layers)
    hess = p * p
    arithmetic = f"{p:,}^2 x 8 B = {hess:,} x 8 B = {hess * 8:,} B = {human_bytes(hess * 8)}"
    acts = []
    for b in batches:
        kept = b * sum(sizes)
        peak = kept + 2 * b * max(sizes)
        acts.append({"batch": b, "values": kept, "bytes": kept * itemsize,
                     "peak_bytes": peak * itemsize})
    return {
        "layer_sizes": sizes,
        "dtype": str(np.dtype(dtype)),
        "itemsize": itemsize,
        "layers": [{"parameters": n, "formula": f} for n, f in layers],
        "parameters": p,
        "parameter_bytes": p * itemsize,
        "gradient_bytes": p * itemsize,
        "hessian": {"entries": hess, "bytes_float64": hess * 8, "arithmetic": arithmetic},
        "optimizer_state": {
            name: {"arrays": k, "bytes": k * p * itemsize} for name, k in OPTIMIZER_STATE.items()
        },
        "activations": acts,
    }


def format_memory_report(layer_sizes, batch_sizes=(1, 32, 128, 1024), dtype="float32",
                         examples=None, history=10) -> str:
    """The report of :func:`memory_report` (and :func:`second_order_report`) as text tables."""
    r = memory_report(layer_sizes, batch_sizes, dtype)
    p, isz = r["parameters"], r["itemsize"]
    net = "-".join(str(s) for s in r["layer_sizes"])
    lines = [f"Network {net}, {r['dtype']} ({isz} B per value)", ""]
    lines.append("Parameters (kernel + bias per Dense layer):")
    for layer in r["layers"]:
        lines.append(f"  {layer['formula']:>24} = {layer['parameters']:>14,}")
    lines.append(f"  {'total P':>24} = {p:>14,}   ({human_bytes(r['parameter_bytes'])})")
    lines.append(f"Gradients: P values = {human_bytes(r['gradient_bytes'])}")
    lines.append("")
    lines.append("Hessian (P x P, float64):")
    lines.append(f"  {r['hessian']['arithmetic']}")
    lines.append("")
    lines.append(f"{'optimizer':<32}{'state arrays':>13}{'state':>12}{'params+grads+state':>20}")
    for name, s in r["optimizer_state"].items():
        total = r["parameter_bytes"] + r["gradient_bytes"] + s["bytes"]
        lines.append(f"{name:<32}{s['arrays']:>13}{human_bytes(s['bytes']):>12}"
                     f"{human_bytes(total):>20}")
    lines.append("")
    lines.append("Activations kept for backward (B x sum of layer sizes), peak adds 2 deltas:")
    lines.append(f"{'batch':>8}{'values':>16}{'kept':>12}{'peak':>12}")
    for a in r["activations"]:
        lines.append(f"{a['batch']:>8}{a['values']:>16,}{human_bytes(a['bytes']):>12}"
                     f"{human_bytes(a['peak_bytes']):>12}")
    lines.append("")
    lines.extend(_second_order_lines(p, examples, r["layer_sizes"][-1], history))
    return "\n".join(lines)


def training_bytes(layer_sizes, batch: int, state_arrays: int, dtype="float32") -> dict:
    """Bytes to train ``layer_sizes`` at ``batch`` with ``state_arrays`` optimizer arrays:
    ``{"parameters", "gradients", "optimizer_state", "activations", "total"}`` (the peak
    activations of `memory_report`)."""
    r = memory_report(layer_sizes, [batch], dtype)
    parts = {"parameters": r["parameter_bytes"], "gradients": r["gradient_bytes"],
             "optimizer_state": state_arrays * r["parameter_bytes"],
             "activations": r["activations"][0]["peak_bytes"]}
    parts["total"] = sum(parts.values())
    return parts


def available_bytes():
    """Memory the system can still give (``MemAvailable`` of /proc/meminfo), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def measure_peak(fn) -> tuple:
    """``(bytes, how)``: how far the process's peak memory rises above its current use while
    ``fn()`` runs.

    On Linux: the peak resident set (``VmHWM`` of /proc/self/status), reset to the current
    one by writing 5 to /proc/self/clear_refs; it sees every allocation, LAPACK's and BLAS's
    included, at page granularity (so below ~1 MB it is noise).  Elsewhere: ``tracemalloc``'s
    peak, which sees numpy's arrays and Python objects but not memory that compiled
    libraries allocate themselves.  ``how`` is ``"peak RSS"`` or ``"tracemalloc"``."""
    if os.access("/proc/self/clear_refs", os.W_OK):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = _proc_status("VmRSS:")
        fn()
        return max(_proc_status("VmHWM:") - base, 0), "peak RSS"
    import tracemalloc   # stdlib; only on this path
    tracemalloc.start()
    try:
        fn()
        return int(tracemalloc.get_traced_memory()[1]), "tracemalloc"
    finally:
        tracemalloc.stop()


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))


def _second_order_lines(p, examples, outputs, history):
    what = "" if examples is None else f", Jacobian of {examples:,} examples x {outputs} outputs"
    lines = [f"Second-order methods (float64{what}):",
             f"{'method':<14}{'largest state':<44}{'bytes':>10}{'peak':>10}"]
    for row in second_order_report(p, examples, outputs, history):
        lines.append(f"{row['method']:<14}{row['matrix']:<44}{human_bytes(row['matrix_bytes']):>10}"
                     f"{human_bytes(row['peak_bytes']):>10}")
        if row.get("jacobian_bytes"):
            lines.append(f"{'':<14}{'J formed at once (gradfit sums row blocks)':<44}"
                         f"{human_bytes(row['jacobian_bytes']):>10}")
    return lines
