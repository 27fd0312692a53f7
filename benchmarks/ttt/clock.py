"""The clock of a time-to-target run and the record it prints (AlgoPerf style).

What is inside the clock, for every framework: from the first training step (model built and
warmed, data loaded into the framework's tensors, optimizer state fresh) to the end of the first
evaluation at or above the target: every epoch's shuffle and training steps, and at every
epoch end the evaluation of the full evaluation split (forward pass, argmax, accuracy) and the
comparison with the target.  Outside it: imports, data loading, model construction, the warm-up
(see each runner), and whatever the framework does after the stop.

`TargetClock` is driven by the runners: ``start()`` before the first step, ``epoch_end(epoch,
accuracy_fn)`` at every epoch end (the evaluation runs inside it), which returns True once the
target is reached.
"""
from __future__ import annotations

import os
import platform
import sys
import time


class TargetClock:
    """Times training to ``target`` on ``workload``'s evaluation split; see the module docstring."""

    def __init__(self, workload, target: float, max_epochs: int):
        self.workload, self.target, self.max_epochs = workload, float(target), int(max_epochs)
        self.t0 = None
        self.evals = []
        self.seconds = None           # time to target, None until reached

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def epoch_end(self, epoch: int, accuracy_fn) -> bool:
        """Evaluate (inside the clock) after epoch ``epoch`` (0-based); True: stop, target reached."""
        t_eval = time.perf_counter()
        accuracy = float(accuracy_fn())
        now = time.perf_counter()
        reached = self.workload.reached(accuracy, self.target)
        self.evals.append({"epoch": epoch + 1, "seconds": round(now - self.t0, 4),
                           "eval_seconds": round(now - t_eval, 4), "accuracy": accuracy})
        if reached and self.seconds is None:
            self.seconds = now - self.t0
        return reached

    def result(self) -> dict:
        reached = self.seconds is not None
        return {"reached": reached,
                "seconds": round(self.seconds, 4) if reached else None,
                "epochs": len(self.evals),
                "accuracy": [e["accuracy"] for e in self.evals],
                "evals": self.evals,
                "eval_seconds_total": round(sum(e["eval_seconds"] for e in self.evals), 4)}


def environment(threads: int) -> dict:
    """Versions, thread settings and every native thread pool (BLAS kernel via threadpoolctl)."""
    versions = {"python": platform.python_version()}
    for mod in ("numpy", "gradfit", "torch", "keras", "jax", "numba", "threadpoolctl"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    try:
        from threadpoolctl import threadpool_info
        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "version", "architecture",
                                        "num_threads", "filepath") if p.get(k) is not None}
                 for p in threadpool_info()]
    except ImportError:
        pools = [{"note": "threadpoolctl not installed: BLAS kernel unknown"}]
    blas = [p for p in pools if p.get("user_api") == "blas"]
    return {
        "threads": threads,
        "versions": versions,
        "blas": [f"{p.get('internal_api')} {p.get('version')} kernel {p.get('architecture')} "
                 f"{p.get('num_threads')} threads ({os.path.basename(p.get('filepath', ''))})"
                 for p in blas],
        "thread_pools": pools,
        "cpu": _cpu(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
                                           "OPENBLAS_L2_SIZE", "KERAS_BACKEND", "XLA_FLAGS",
                                           "NUMBA_THREADING_LAYER") if k in os.environ},
    }


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.machine()} ({os.cpu_count()} logical CPUs)"


def accuracy_of(logits, y) -> float:
    """Fraction of rows whose argmax equals the label (numpy arrays)."""
    return float((logits.argmax(axis=1) == y).mean())
