"""Is the README's plain ``mpiexec -n 2 gradfit train`` as fast as the launcher form?

    python benchmarks/mpiexec_forms.py [--rounds 3] [--epochs 3] [--data mnist] [--quick]

Each round runs, one after the other (so that load from elsewhere falls on all alike):

  plain       mpiexec -n 2 gradfit train ...             (threads per rank chosen by gradfit)
  launcher    python -m gradfit.parallel.launch -n 2 -- gradfit train ...
  oversub     OMP_NUM_THREADS=<cores> mpiexec -n 2 gradfit train ...
              (every rank with all the cores: what plain mpiexec did before gradfit chose)
  1 process   gradfit train ...                         (all cores)

and times each form's whole command twice, with ``--epochs 1`` and ``--epochs 1 + E``: the
difference divided by ``E`` epochs' steps is the time per step with start-up, data loading and
the final evaluation taken out. Printed: per form the range (min-median-max) over the rounds,
the ratio plain / launcher, the versions, the CPU, the BLAS kernel. Uses MNIST when
``$GRADFIT_DATA`` holds it, else the bundled digits.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from gradfit.bench.env import blas_kernel, cpu_model  # noqa: E402
from gradfit.parallel import launch  # noqa: E402

STEPS = re.compile(r": (\d+) batches of \d+ per epoch")


def forms(train_args, cores):
    gradfit = [sys.executable, "-m", "gradfit", "train", *train_args]
    mpiexec = launch.find_mpiexec()
    clean = {k: v for k, v in os.environ.items() if k not in launch.THREAD_VARS}
    return {
        "plain mpiexec -n 2": ([mpiexec, "-n", "2", *gradfit], clean),
        "launcher -n 2": ([sys.executable, "-m", "gradfit.parallel.launch", "-n", "2", "--",
                           *gradfit], clean),
        f"mpiexec -n 2, {cores} threads/rank": ([mpiexec, "-n", "2", *gradfit],
                                                {**clean, **{k: str(cores) for k in launch.THREAD_VARS}}),
        "1 process": (gradfit, clean),
    }


def steps_per_epoch(output: str) -> int:
    found = STEPS.search(output)
    if found is None:
        raise RuntimeError(f"no 'N batches of B per epoch' line in the output:\n{output[-2000:]}")
    return int(found.group(1))


def timed(cmd, env, args):
    """(wall seconds, the run's output) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3,
                   help="epochs timed (the difference between a run of 1 and of 1 + EPOCHS)")
    p.add_argument("--data", default=None, help="mnist or digits (default: mnist when available)")
    p.add_argument("--hidden", default="512,512")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="digits, 2 epochs, 1 round: a smoke run")
    a = p.parse_args(argv)
    data = a.data or ("mnist" if os.path.isdir(os.path.join(os.environ.get("GRADFIT_DATA", ""),
                                                              "mnist")) else "digits")
    rounds, epochs = (1, 1) if a.quick else (a.rounds, a.epochs)
    data = "digits" if a.quick else data
    cores = len(os.sched_getaffinity(0))
    print(f"CPU: {cpu_model()}; BLAS (numpy): {blas_kernel()}; Python {sys.version.split()[0]}")
    print(f"gradfit train --data {data} --hidden {a.hidden} --batch-size {a.batch_size} "
          f"--epochs 1 and {1 + epochs}: ms/step = the wall-time difference / ({epochs} epochs' "
          f"steps); {rounds} round(s), forms in turns")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for k, (label, (cmd, env)) in enumerate(forms([], cores).items()):
                walls = []
                for e in (1, 1 + epochs):
                    out = os.path.join(tmp, f"r{r}-{k}-{e}")
                    args = ["--data", data, "--hidden", a.hidden, "--batch-size",
                            str(a.batch_size), "--epochs", str(e), "--patience", "0",
                            "--verbose", "2", "--out", out]
                    seconds, output = timed(cmd, env, args)
                    walls.append(seconds)
                per_step = (walls[1] - walls[0]) / (epochs * steps_per_epoch(output)) * 1e3
                times.setdefault(label, []).append(per_step)
                print(f"  round {r + 1}: {label:<34} {per_step:8.3f} ms/step", flush=True)
    print(f"\n{'form':<36}{'ms/step min':>12}{'median':>9}{'max':>9}")
    for label, ts in times.items():
        print(f"{label:<36}{min(ts):>12.2f}{statistics.median(ts):>9.2f}{max(ts):>9.2f}")
    labels = list(times)
    ratio = statistics.median(times[labels[0]]) / statistics.median(times[labels[1]])
    print(f"\nplain / launcher (median ms/step): {ratio:.3f} (<= 1: plain mpiexec is no slower)")
    return times


if __name__ == "__main__":
    main()
