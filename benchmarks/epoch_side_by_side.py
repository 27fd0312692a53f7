"""One epoch of the time-to-target network, gradfit against PyTorch, in one process, in turns.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/epoch_side_by_side.py --threads 2

784-512-512-10 ReLU, Adam 2e-3, batch 256, 60,000 random float32 rows (the time-to-target
recipe's shapes; MNIST's values would not change a matmul's time), 234 equal batches. Timed per
round, in this order: gradfit's ``fit`` (one epoch), a loop of ``train_on_batch`` over the same
kind of gathered batches, the same loop on one fixed batch (the data in cache), PyTorch's loop
over ``index_select`` batches (Adam ``fused=True``), and PyTorch on one fixed batch. Seconds per
epoch, min / median / max over ``--rounds``. It separates what the time-to-target clock mixes:
the step, the data path, and the epochs a seed needs (`docs/time-to-target.md`).
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gradfit  # noqa: E402
from gradfit.bench.env import blas_kernel, cpu_model  # noqa: E402

ROWS, BATCH = 60_000, 256


def gradfit_model():
    gradfit.set_random_seed(0)
    m = gradfit.Sequential([gradfit.Input(shape=(784,)), gradfit.Dense(512, activation="relu"),
                            gradfit.Dense(512, activation="relu"), gradfit.Dense(10)])
    m.compile(optimizer=gradfit.optimizers.Adam(2e-3, epsilon=1e-8),
              loss=gradfit.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def contenders(x, y):
    steps = ROWS // BATCH
    m = gradfit_model()
    m.fit(x[:10 * BATCH], y[:10 * BATCH], batch_size=BATCH, epochs=1, verbose=0)   # warm
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                              torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(net.parameters(), 2e-3, eps=1e-8, fused=True)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = torch.nn.CrossEntropyLoss()

    def torch_step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss(net(xb), yb).backward()
        opt.step()

    def gradfit_loop(fixed):
        order = np.random.permutation(ROWS)
        for k in range(steps):
            rows = slice(0, BATCH) if fixed else order[k * BATCH:(k + 1) * BATCH]
            m.train_on_batch(x[rows], y[rows])

    def torch_loop(fixed):
        order = torch.randperm(ROWS)
        for k in range(steps):
            if fixed:
                torch_step(xt[:BATCH], yt[:BATCH])
            else:
                rows = order[k * BATCH:(k + 1) * BATCH]
                torch_step(xt.index_select(0, rows), yt.index_select(0, rows))
    for _ in range(3):
        torch_loop(False)                                                             # warm
    return {"gradfit fit": lambda: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
            "gradfit train_on_batch": lambda: gradfit_loop(False),
            "gradfit, one fixed batch": lambda: gradfit_loop(True),
            f"torch {torch.__version__} loop": lambda: torch_loop(False),
            "torch, one fixed batch": lambda: torch_loop(True)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    gradfit.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((ROWS, 784), dtype=np.float32)
    y = rng.integers(0, 10, ROWS)
    runs = contenders(x, y)
    times = {k: [] for k in runs}
    load = os.getloadavg()
    for _ in range(args.rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    print(f"CPU: {cpu_model()}; {args.threads} threads (gradfit BLAS and numba, torch); "
          f"BLAS: {blas_kernel()}; numpy {np.__version__}, torch {torch.__version__}")
    print(f"load average before / after: {' '.join(f'{v:.2f}' for v in load)} / "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"784-512-512-10, Adam, batch {BATCH}, {ROWS // BATCH} steps; seconds per epoch over "
          f"{args.rounds} rounds")
    for name, v in times.items():
        v = sorted(v)
        print(f"  {name:<28} min {v[0]:.3f}  median {v[len(v) // 2]:.3f}  max {v[-1]:.3f}")


if __name__ == "__main__":
    main()
