"""Is the README's plain ``mpiexec -n 2 gradfit train`` as fast as the launcher form?

    python benchmarks/mpiexec_forms.py [--rounds 3] [--epochs 3] [--data mnist] [--quick]

Each round runs, one after the other (so that load from elsewhere falls on all alike):

  plain       mpiexec -n 2 gradfit train ...             (threads per rank chosen by gradfit)
  launcher    python -m gradfit.parallel.launch -n 2 -- gradfit train ...
  oversub     OMP_NUM_THREADS=<cores> mpiexec -n 2 gradfit train ...
              (every rank with all the cores: what plain mpiexec did before gradfit chose)
  1 process   gradfit train ...                         (all cores)

and reads the time per step from each run's progress lines (``verbose 2``: ``... 44ms/step``),
the median over the epochs after the first (which pays for start-up). Printed: per form the
range (min-median-max) over the rounds, the ratio plain / launcher, the versions, the CPU, the
BLAS kernel. Uses MNIST when ``$GRADFIT_DATA`` holds it, else the bundled digits.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from gradfit.bench.env import blas_kernel, cpu_model  # noqa: E402
from gradfit.parallel import launch  # noqa: E402

STEP = re.compile(r"Epoch \d+/\d+ - \d+/\d+ - \S+ - ([\d.]+)(us|ms|s)/step")
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


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


def ms_per_step(output: str) -> float:
    steps = [float(v) * UNIT[u] for v, u in STEP.findall(output)]
    if len(steps) < 2:
        raise RuntimeError(f"no progress lines in the output:\n{output[-2000:]}")
    return statistics.median(steps[1:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--data", default=None, help="mnist or digits (default: mnist when available)")
    p.add_argument("--hidden", default="512,512")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="digits, 2 epochs, 1 round: a smoke run")
    a = p.parse_args(argv)
    data = a.data or ("mnist" if os.path.isdir(os.path.join(os.environ.get("GRADFIT_DATA", ""),
                                                              "mnist")) else "digits")
    rounds, epochs = (1, 2) if a.quick else (a.rounds, a.epochs)
    data = "digits" if a.quick else data
    cores = len(os.sched_getaffinity(0))
    print(f"CPU: {cpu_model()}; BLAS (numpy): {blas_kernel()}; Python {sys.version.split()[0]}")
    print(f"gradfit train --data {data} --hidden {a.hidden} --batch-size {a.batch_size} "
          f"--epochs {epochs}; {rounds} round(s), forms in turns")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for label, (cmd, env) in forms([], cores).items():
                out = os.path.join(tmp, f"r{r}-{len(times.get(label, []))}-{abs(hash(label))}")
                args = ["--data", data, "--hidden", a.hidden, "--batch-size", str(a.batch_size),
                        "--epochs", str(epochs), "--patience", "0", "--verbose", "2", "--out", out]
                proc = subprocess.run(cmd + args, env=env, capture_output=True, text=True,
                                      timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"{label} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
                times.setdefault(label, []).append(ms_per_step(proc.stdout))
                print(f"  round {r + 1}: {label:<34} {times[label][-1]:8.2f} ms/step", flush=True)
    print(f"\n{'form':<36}{'ms/step min':>12}{'median':>9}{'max':>9}")
    for label, ts in times.items():
        print(f"{label:<36}{min(ts):>12.2f}{statistics.median(ts):>9.2f}{max(ts):>9.2f}")
    labels = list(times)
    ratio = statistics.median(times[labels[0]]) / statistics.median(times[labels[1]])
    print(f"\nplain / launcher (median ms/step): {ratio:.3f} (<= 1: plain mpiexec is no slower)")
    return times


if __name__ == "__main__":
    main()
