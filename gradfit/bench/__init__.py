"""``gradfit bench``: the lecture's speed argument in numbers, measured in one run.

(a) matrix products: GFLOP/s of a Python triple loop, numpy's BLAS and (when present) a GPU
    through CuPy, naming the BLAS library and kernel;
(b) training throughput (samples/s) and achieved GFLOP/s (``6 P B`` per step) as a fraction
    of the measured matmul rate, gradfit beside PyTorch CPU and Keras;
(c) the optimizer step alone, numpy reference vs fused kernels vs PyTorch's fused Adam, in
    GB/s beside a measured memory-copy bandwidth.

Every run prints (and stores in the JSON) the CPU, versions, thread counts and the BLAS
kernel.  ``OPENBLAS_CORETYPE`` forces OpenBLAS's kernel: to measure the machine's own, run
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE gradfit bench``; the header says which ran.

Library use::

    from gradfit.bench import run_bench, format_report
    results = run_bench(quick=True, threads=2)     # JSON-able dict
    print(format_report(results))

Benchmarks are not tests: the CI smoke test runs ``--quick`` and checks the JSON's form,
never a speed.
"""
from __future__ import annotations

import os
import time

from ..backend import configure_numba, set_num_threads
from .env import environment, optional
from .matmul import run_matmul
from .optstep import OPTIMIZERS, run_optstep
from .profile import format_profile, profile_step
from .training import NETWORKS, run_training

LECTURE_PARAMETERS = 2_555_501
FRAMEWORKS = ("gradfit", "torch", "keras")
SCHEMA_VERSION = 1


def run_bench(quick: bool = False, threads: int | None = None, frameworks=FRAMEWORKS,
              sections=("matmul", "optimizer", "training"), profile: bool = False,
              log=None, networks=None, optimizers=None, batches=None) -> dict:
    """Run the benchmark sections and return a JSON-able dict (see ``format_report``).

    ``networks``: subset of ``NETWORKS`` for section (b) (None: lecture, adam, small; "mnist"
    is the time-to-target network 784-512-512-10); ``batches``: its batch sizes (None: 8, 32,
    128, 1024);
    ``optimizers``: subset of ``optstep.OPTIMIZERS`` for section (c); None: all.
    """
    threads = int(os.cpu_count() or 1) if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1 (or None for all CPUs), got {threads}")
    if batches is not None and (not batches or any(int(b) < 1 for b in batches)):
        raise ValueError(f"batches must be positive integers, got {batches}")
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        raise ValueError(f"unknown frameworks {sorted(unknown)}: choose from {', '.join(FRAMEWORKS)}")
    for what, asked, valid in (("networks", networks, NETWORKS), ("optimizers", optimizers, OPTIMIZERS)):
        bad = set(asked or ()) - set(valid)
        if bad:
            raise ValueError(f"unknown {what} {sorted(bad)}: choose from {', '.join(valid)}")
    for name in frameworks:  # load every library first, so that the thread limits reach them
        if name != "gradfit":
            optional(name)   # absent: its rows say so
    saved = _saved_threads()
    try:
        set_num_threads(threads)
        _torch_threads(threads)
        return _run_sections(quick, threads, frameworks, sections, profile,
                             log or (lambda msg: None), networks, optimizers, batches)
    finally:
        _restore_threads(saved)


def _run_sections(quick, threads, frameworks, sections, profile, log, networks=None,
                  optimizers=None, batches=None) -> dict:
    t0 = time.time()
    out = {"schema": SCHEMA_VERSION, "quick": bool(quick),
           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_before": _load()}
    out["environment"] = environment(threads)
    matmul_rate = None
    if "matmul" in sections:
        log("(a) matrix products ...")
        out["matmul"] = run_matmul(quick)
        matmul_rate = next(r["gflops"] for r in out["matmul"] if "numpy" in r["name"]
                           and "float32" in r["name"])
    if "training" in sections:
        log("(b) training throughput ...")
        out["training"] = run_training(threads, matmul_rate, frameworks, quick,
                                       batches=batches, networks=networks)
    if "optimizer" in sections:
        log("(c) optimizer step ...")
        out["optimizer_step"] = run_optstep(20_000 if quick else LECTURE_PARAMETERS, threads, quick,
                                            optimizers, torch="torch" in frameworks)
    if profile and not quick:
        sizes, kind = NETWORKS["lecture"]
        out["profile"] = [profile_step(sizes, kind, b) for b in (8, 32, 128, 1024)]
    out["environment"]["numba_threading_layer"] = environment(threads)["numba_threading_layer"]
    out["load_average_after"] = _load()
    out["seconds"] = time.time() - t0
    return out


def _saved_threads() -> dict:
    """Thread counts before the run (BLAS per library, numba, torch), to restore after."""
    saved = {}
    try:
        from threadpoolctl import threadpool_info
        saved["pools"] = {d["prefix"]: d["num_threads"] for d in threadpool_info()}
    except ImportError:
        pass
    numba = configure_numba()  # before numba starts threads: it picks the threading layer
    if numba is not None:
        saved["numba"] = numba.get_num_threads()
    try:
        import torch
        saved["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    return saved


def _restore_threads(saved: dict) -> None:
    if saved.get("pools"):
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=saved["pools"])
    if "numba" in saved:
        import numba
        numba.set_num_threads(saved["numba"])
    if "torch" in saved:
        _torch_threads(saved["torch"])


def _torch_threads(threads):
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def _load():
    try:
        return list(os.getloadavg())
    except OSError:  # pragma: no cover - not on every OS
        return None


# ------------------------------------------------------------------ report
def format_report(res: dict) -> str:
    """The results of ``run_bench`` as text tables."""
    env = res["environment"]
    v = env["versions"]
    lines = [f"gradfit bench{' --quick' if res.get('quick') else ''}  ({res['started']}, "
             f"{res['seconds']:.0f} s)",
             f"CPU: {env['cpu']}",
             "versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
             f"threads: requested {env['threads']['requested']}, numba {env['threads']['numba']}, "
             f"torch {env['threads']['torch']}",
             f"BLAS (numpy): {env['blas']}",
             f"numba threading layer: {env.get('numba_threading_layer')}",
             f"OpenBLAS/OpenMP environment: {env['openblas_env'] or 'none set'}",
             f"load average before/after: {_fmt_load(res.get('load_average_before'))} / "
             f"{_fmt_load(res.get('load_average_after'))}"]
    if "matmul" in res:
        lines += ["", "(a) matrix product  m x k @ k x n, 2mnk flops",
                  f"  {'what':<44}{'shape':>20}{'seconds':>12}{'GFLOP/s':>10}"]
        for r in res["matmul"]:
            lines.append(f"  {r['name']:<44}{'x'.join(map(str, r['shape'])):>20}"
                         f"{r['seconds']:>12.4g}{r['gflops']:>10.3g}")
    if "training" in res:
        lines += ["", "(b) training throughput, Adam, float32 (GFLOP/s = 6 P B / step time)",
                  f"  {'network':<20}{'batch':>6}  {'framework':<36}{'samples/s':>11}"
                  f"{'GFLOP/s':>9}{'of matmul':>10}"]
        for r in res["training"]:
            net = "-".join(map(str, r["sizes"]))
            if "error" in r:
                lines.append(f"  {net:<20}{r['batch']:>6}  {r['framework']:<36}error: {r['error']}")
                continue
            frac = r["fraction_of_matmul"]
            lines.append(f"  {net:<20}{r['batch']:>6}  {r['framework']:<36}"
                         f"{r['samples_per_s']:>11,.0f}{r['gflops']:>9.2f}"
                         f"{'' if frac is None else f'{100 * frac:.1f}%':>10}")
    if "optimizer_step" in res:
        o = res["optimizer_step"]
        lines += ["", f"(c) optimizer step on {o['parameters']:,} float32 parameters "
                      f"(bytes = arrays read + written)"]
        for c in o["copy"]:
            lines.append(f"  copy bandwidth: {c['name']:<40}{c['gbps']:>8.1f} GB/s")
        lines.append(f"  {'optimizer':<28}{'path':<26}{'ms':>9}{'GB/s':>8}")
        for r in o["steps"]:
            if "error" in r:
                lines.append(f"  {r['optimizer']:<28}{r['path']:<26}  error: {r['error']}")
            else:
                lines.append(f"  {r['optimizer']:<28}{r['path']:<26}{r['seconds'] * 1e3:>9.3f}"
                             f"{r['gbps']:>8.1f}")
    if "training" in res or "optimizer_step" in res:
        lines += [""] + format_targets(res)
    if res.get("profile"):
        lines += [""] + [format_profile(p) for p in res["profile"]]
    return "\n".join(lines)


def _fmt_load(load):
    return "?" if not load else " ".join(f"{x:.2f}" for x in load)


def targets(res: dict) -> list[dict]:
    """The speed targets (docs/speed.md) as ratios measured in this run (None when not measured)."""
    rows = {(r["network"], r["batch"], r["framework"].split()[0] + (
        " step" if r["framework"].endswith("step") else "")): r
        for r in res.get("training", []) if "error" not in r}

    def sps(net, batch, fw):
        r = rows.get((net, batch, fw))
        return None if r is None else r["samples_per_s"]

    def ratio(a, b):
        return None if a is None or b is None else a / b
    out = []
    for b in (8, 32, 128, 1024):
        out.append({"target": f"lecture net, batch {b}: gradfit / torch samples/s >= 1.2",
                    "goal": 1.2, "value": ratio(sps("lecture", b, "gradfit"), sps("lecture", b, "torch"))})
    r = rows.get(("lecture", 1024, "gradfit"))
    out.append({"target": "lecture net, batch 1024: fraction of matmul rate >= 0.8", "goal": 0.8,
                "value": None if r is None else r["fraction_of_matmul"]})
    out.append({"target": "64-128-10, batch 32: gradfit / torch samples/s >= 3", "goal": 3.0,
                "value": ratio(sps("small", 32, "gradfit"), sps("small", 32, "torch"))})
    steps = {r["path"]: r for r in res.get("optimizer_step", {}).get("steps", [])
             if r.get("optimizer") == "adam" and "error" not in r}
    ours, theirs = steps.get("fused (numba)"), steps.get("torch Adam(fused=True)")
    out.append({"target": "Adam step: gradfit fused time / torch fused time <= 1.2", "goal": 1.2,
                "value": None if not (ours and theirs) else ours["seconds"] / theirs["seconds"],
                "lower_is_better": True})
    for t in out:
        v = t["value"]
        t["met"] = None if v is None else (v <= t["goal"] if t.get("lower_is_better") else v >= t["goal"])
    return out


def format_targets(res: dict) -> list[str]:
    lines = ["Speed targets, docs/speed.md (gradfit = train_on_batch):"]
    for t in targets(res):
        v = "not measured" if t["value"] is None else f"{t['value']:.2f}"
        mark = {True: "met", False: "NOT met", None: ""}[t["met"]]
        lines.append(f"  {t['target']:<62}{v:>14}  {mark}")
    return lines
