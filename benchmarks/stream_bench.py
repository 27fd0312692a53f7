"""Out-of-core training: peak anonymous memory of one streamed epoch, and streaming vs
in-memory throughput, printed by one run.

    python benchmarks/stream_make.py /scratch/big-packed              # once: 2,000,000 rows
    python benchmarks/stream_bench.py /scratch/big-packed             # both measurements
    python benchmarks/stream_bench.py /tmp/small --steps 200          # a quick check

The 784-512-512-10 network (relu, softmax, Adam, float32) at batch 256, BLAS on 2 threads
(the prefetch thread comes on top: it mostly waits on reads). Each measurement runs in its own
child process, so that one's memory never counts in the other's:

* ``stream``: one epoch over the packed directory (``--steps`` to cut it short), batches
  read and converted by the prefetch thread; RssAnon sampled every 10 ms from
  /proc/self/status. Targets: peak RssAnon < 300 MB (the data as a float32 array: 6.3 GB).
* ``memory``: the first ``--memory-rows`` rows loaded into one float32 array, then
  ``model.fit`` on it (today's path) for one epoch of them.

Throughput = samples trained / wall time of the epoch (the first step included in both).
Target: streaming >= 90% of in memory. The machine's load average is printed before and after;
numbers from a busy machine are not claims.

``--mode paired`` measures the throughput ratio alone, in ONE process, in turns (``--rounds``
rounds, the order rotating through the 6 permutations): a ``fit`` of ``--steps`` steps streamed
from the packed directory; a ``fit`` of as many steps on a float32 array of the first
``--steps`` x batch rows; and a control, the streamed path with its reads replaced by a gather
from those rows held in memory (`RowsFromMemory`), which splits the gap into the reads' cost
(stream / control) and the rest of the path (control / memory). Three models of the same
shapes; each fit is timed from the end of its 20th step to the end of its last by a callback,
so that the work before the first step (a 2,000,000-row permutation, the prefetch thread's
start; once per epoch, 0.2% of a full streamed epoch) is out of all. On a shared VM whose speed
drifts minute to minute, taking turns in one process compares runs made under the same
conditions; the per-round ratios and their medians are printed.

    python benchmarks/stream_bench.py /scratch/big-packed --mode paired --steps 1000 --rounds 12
"""
import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import stream_common as common

import numpy as np

import gradfit
from gradfit.backend import set_num_threads
from gradfit.bench.env import blas_kernel, cpu_model

from gradfit.datasets import open as open_packed
from gradfit.datasets.packed import PackedSource


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("packed", help="a packed directory (benchmarks/stream_make.py writes one)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    ap.add_argument("--steps", type=int, default=0, help="stop the streamed epoch after this many "
                                                         "steps (default: the whole epoch)")
    ap.add_argument("--memory-rows", type=int, default=200_000,
                    help="rows of the in-memory run (default 200,000: 627 MB as float32)")
    ap.add_argument("--order", default="full", choices=["full", "block"])
    ap.add_argument("--workers", type=int, default=1,
                    help="prefetch threads of the streamed run (0: read on the training thread)")
    ap.add_argument("--mode", default="both", choices=["both", "stream", "memory", "paired"])
    ap.add_argument("--rounds", type=int, default=6, help="paired mode: rounds (default 6)")
    return ap.parse_args(argv)


def run_stream(args):
    source = open_packed(args.packed, order=args.order, verify=False, workers=args.workers)
    model = common.build_model(source.row_shape)
    base = common.rss_anon_mib()
    with common.PeakSampler() as mem:
        seconds, samples = common.train_epochs(model, source, args.batch_size,
                                               steps_per_epoch=args.steps or None)
    return {"mode": "stream", "rows": len(source), "samples": samples, "seconds": seconds,
            "samples_per_s": samples / seconds, "rss_anon_before_mib": base,
            "peak_rss_anon_mib": mem.peak, "samples_taken": mem.samples,
            "rows_read": int(getattr(source, "rows_read", 0))}


def run_memory(args):
    source = open_packed(args.packed, verify=False)
    n = min(len(source), args.memory_rows, args.steps * args.batch_size or args.memory_rows)
    records = source.read_rows(np.arange(n), "loading")
    x = records["x"].astype(np.float32)
    y = records["y"].astype(np.int64)
    del records
    model = common.build_model(source.row_shape)
    base = common.rss_anon_mib()
    with common.PeakSampler() as mem:
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
    samples = int(model.train_state.opt["step"]) * args.batch_size
    return {"mode": "memory", "rows": n, "samples": samples, "seconds": seconds,
            "samples_per_s": samples / seconds, "rss_anon_before_mib": base,
            "peak_rss_anon_mib": mem.peak, "array_mib": x.nbytes / 2**20}


class StepClock(gradfit.callbacks.Callback):
    """The time at the end of every training step; ``rate`` from the end of step ``skip`` on."""

    def __init__(self, skip=20):
        super().__init__()
        self.skip, self.times = skip, []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

    def rate(self, batch_size):
        steps = len(self.times) - self.skip
        return steps * batch_size / (self.times[-1] - self.times[self.skip - 1])


class RowsFromMemory(PackedSource):
    """The control of ``--mode paired``: a packed source whose reads are replaced by a gather
    from records held in memory (row ``r`` is record ``r % len(records)``), so that everything
    else of the streamed path runs as it is: the source, the prefetch thread, the conversion."""

    def read_rows(self, rows, where):
        return self.records[rows % len(self.records)]


SIDES = ("stream", "control", "memory")


def run_paired(args):
    """Streamed, control and in-memory fits in turns in this process (module docstring)."""
    steps = args.steps or 1000
    source = open_packed(args.packed, order=args.order, verify=False, workers=args.workers)
    control = RowsFromMemory(args.packed, order=args.order, verify=False, workers=args.workers)
    n = min(len(source), steps * args.batch_size)
    control.records = source.read_rows(np.arange(n), "loading")
    x, y = control.records["x"].astype(np.float32), control.records["y"].astype(np.int64)
    models = {side: common.build_model(source.row_shape) for side in SIDES}
    rates = {side: [] for side in SIDES}
    orders = list(itertools.permutations(SIDES))
    for r in range(args.rounds):
        for side in orders[r % len(orders)]:
            clock = StepClock()
            if side == "memory":
                models[side].fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0,
                                 callbacks=[clock])
            else:
                models[side].fit(source if side == "stream" else control, verbose=0, epochs=1,
                                 batch_size=args.batch_size, steps_per_epoch=steps,
                                 callbacks=[clock])
            rates[side].append(clock.rate(args.batch_size))
        last = {side: rates[side][-1] for side in SIDES}
        print(f"  round {r + 1}: samples/s stream {last['stream']:6.0f}  control "
              f"{last['control']:6.0f}  memory {last['memory']:6.0f};  stream / memory "
              f"{last['stream'] / last['memory']:.1%}, stream / control "
              f"{last['stream'] / last['control']:.1%}", flush=True)

    def ratios(a, b):
        return sorted(u / v for u, v in zip(rates[a], rates[b]))
    out = {"mode": "paired", **rates, "ratios": ratios("stream", "memory"),
           "stream_over_control": ratios("stream", "control"),
           "control_over_memory": ratios("control", "memory")}
    print(f"784-512-512-10, batch {args.batch_size}, {args.threads} BLAS threads, order "
          f"{args.order}, {steps} steps per fit ({n} rows in memory), one process")
    for key, label in (("ratios", "streaming / in memory"),
                       ("stream_over_control", "streaming / control (the reads' cost)"),
                       ("control_over_memory", "control / in memory (the rest of the path)")):
        r = out[key]
        print(f"  {label:<45} min {r[0]:6.1%}  median {statistics.median(r):6.1%}  "
              f"max {r[-1]:6.1%}" + ("  (target >= 90%)" if key == "ratios" else ""))
    return out


def main(argv=None):
    args = parse(argv)
    if args.mode == "paired":
        set_num_threads(args.threads)
        print(f"CPU: {cpu_model()}; BLAS: {blas_kernel()}; numpy {np.__version__}, "
              f"gradfit {gradfit.__version__}")
        print(f"load average before: {os.getloadavg()}")
        print(json.dumps(run_paired(args)))
        print(f"load average after: {os.getloadavg()}")
        return 0
    if args.mode != "both":
        result = run_stream(args) if args.mode == "stream" else run_memory(args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    print(f"load average before: {os.getloadavg()}")
    results = {}
    for mode in ("stream", "memory"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
        out = subprocess.run(cmd, env=common.child_env(args.threads), capture_output=True,
                             text=True, check=False)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if out.returncode or line is None:
            print(out.stdout, out.stderr, file=sys.stderr)
            raise SystemExit(f"the {mode} run failed (exit {out.returncode})")
        results[mode] = json.loads(line[len("RESULT "):])
    s, m = results["stream"], results["memory"]
    print(f"784-512-512-10, batch {args.batch_size}, {args.threads} BLAS threads, order {args.order}")
    for r in (s, m):
        print(f"  {r['mode']:<7} {r['samples']:>9} samples in {r['seconds']:7.1f} s: "
              f"{r['samples_per_s']:8.0f} samples/s; RssAnon {r['rss_anon_before_mib']:.0f} MiB "
              f"before, peak {r['peak_rss_anon_mib']:.0f} MiB")
    print(f"  stream: {s['rows']} rows, {s['rows_read']} read; peak RssAnon "
          f"{s['peak_rss_anon_mib'] * 2**20 / 1e6:.0f} MB (target < 300 MB)")
    print(f"  streaming / in memory: {s['samples_per_s'] / m['samples_per_s']:.1%} (target >= 90%)")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
