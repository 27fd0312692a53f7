"""Section (b): training throughput, gradfit side by side with PyTorch and Keras.

One *step* = forward + backward + Adam update on one batch of ``B`` examples.  Its
arithmetic is about ``6 P B`` flops for a Dense network with ``P`` parameters (forward
``2 P B``: one multiply-add per weight per example; backward twice that: ``dW = x^T dz``
and ``dx = dz W^T``), so achieved GFLOP/s = ``6 P B / seconds / 1e9``, reported as a
fraction of the measured numpy matmul rate (section a).

Networks (hidden layers relu, Adam with lr 1e-3 everywhere, float32):

* ``lecture``  100-500-1000-2000-1, mse;
* ``adam``     784-1000-1000-10 (the Adam paper's MNIST MLP), softmax + cross-entropy;
* ``small``    64-128-10, softmax + cross-entropy.

gradfit is timed twice: ``train_on_batch`` (the Keras call, with its input checks) and
``step`` (`gradfit.train.step.train_step` on arrays already checked: what ``fit`` runs).
PyTorch runs ``nn.Sequential`` of ``Linear``/``ReLU`` with ``Adam(fused=True)`` and
``CrossEntropyLoss`` on logits; Keras runs ``train_on_batch`` on its own backend.
When CuPy sees a CUDA device, gradfit on the "cupy" backend and PyTorch on CUDA are timed too
(each step synchronised), side by side in the same table.
"""
from __future__ import annotations

import os

import numpy as np

from .. import backend
from ..backend import xp
from ..layers import Dense, Input
from ..model import Sequential
from ..train.step import train_step
from ..utils import set_random_seed
from .env import optional
from .timing import time_interleaved

NETWORKS = {
    "lecture": ([100, 500, 1000, 2000, 1], "mse"),
    "adam": ([784, 1000, 1000, 10], "ce"),
    "small": ([64, 128, 10], "ce"),
    "mnist": ([784, 512, 512, 10], "ce"),   # the time-to-target network (benchmarks/ttt)
}
DEFAULT_NETWORKS = ("lecture", "adam", "small")
DEFAULT_BATCHES = (8, 32, 128, 1024)
QUICK_NETWORKS = {"tiny": ([16, 32, 4], "ce"), "tiny_mse": ([8, 16, 1], "mse")}


def n_params(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def make_data(sizes, kind, batch, seed=0):
    """x (B, n_in) float32; y (B, 1) float32 for mse, int64 labels for ce."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    if kind == "mse":
        y = rng.standard_normal((batch, sizes[-1])).astype(np.float32)
    else:
        y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    return x, y


# ------------------------------------------------------------------ gradfit
def gradfit_model(sizes, kind):
    set_random_seed(0)
    layers = [Input(shape=(sizes[0],))]
    layers += [Dense(n, activation="relu") for n in sizes[1:-1]]
    layers.append(Dense(sizes[-1], activation=None if kind == "mse" else "softmax"))
    model = Sequential(layers)
    model.compile(optimizer="adam",
                  loss="mse" if kind == "mse" else "sparse_categorical_crossentropy")
    return model


def gradfit_steps(sizes, kind, batch):
    """{"train_on_batch": fn, "step": fn} for one batch; each call does one update."""
    model = gradfit_model(sizes, kind)
    x, y = make_data(sizes, kind, batch)
    model.train_on_batch(x, y)  # builds, resolves the loss head, creates the optimizer state
    xd, yd = xp().asarray(x), xp().asarray(model.check_targets(y, len(x)))

    def step():
        train_step(model, model.train_state, xd, yd, batch)
    return {"gradfit train_on_batch": lambda: model.train_on_batch(x, y), "gradfit step": step}


# ------------------------------------------------------------------ torch
def torch_step(sizes, kind, batch, threads):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mods = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    mods.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.MSELoss() if kind == "mse" else torch.nn.CrossEntropyLoss()
    x, y = make_data(sizes, kind, batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
    step.parts = (net, opt, loss_fn, xt, yt)
    return step


# ------------------------------------------------------------------ GPU (CuPy / CUDA)
def gpu_available() -> bool:
    """True when CuPy imports and sees a CUDA device."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device
        return False


def gradfit_gpu_step(sizes, kind, batch):
    """gradfit's step with every array on the GPU (backend "cupy"), synchronised per step."""
    import cupy

    backend.set_backend("cupy")
    try:
        model = gradfit_model(sizes, kind)
        x, y = make_data(sizes, kind, batch)
        model.train_on_batch(x, y)
        xd, yd = cupy.asarray(x), cupy.asarray(model.check_targets(y, len(x)))
    finally:
        backend.set_backend("numpy")

    def step():
        backend.set_backend("cupy")
        try:
            train_step(model, model.train_state, xd, yd, batch)
            cupy.cuda.Device().synchronize()
        finally:
            backend.set_backend("numpy")
    return step


def torch_cuda_step(sizes, kind, batch):
    """PyTorch on the GPU: the same network, Adam(fused=True), synchronised per step."""
    import torch
    step_cpu = torch_step(sizes, kind, batch, threads=torch.get_num_threads())
    net, opt, loss_fn, xt, yt = step_cpu.parts
    net.cuda()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    xt, yt = xt.cuda(), yt.cuda()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xt), yt).backward()
        opt.step()
        torch.cuda.synchronize()
    return step


# ------------------------------------------------------------------ keras
def keras_step(sizes, kind, batch):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    keras.utils.set_random_seed(0)
    layers = [keras.Input(shape=(sizes[0],))]
    layers += [keras.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
    layers.append(keras.layers.Dense(sizes[-1], activation=None if kind == "mse" else "softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="mse" if kind == "mse" else "sparse_categorical_crossentropy")
    x, y = make_data(sizes, kind, batch)
    return lambda: model.train_on_batch(x, y), f"keras {keras.__version__} ({keras.backend.backend()})"


# ------------------------------------------------------------------ driver
def run_training(threads: int, matmul_gflops: float, frameworks=("gradfit", "torch", "keras"),
                 quick: bool = False, batches=None, networks=None) -> list[dict]:
    """One row per (network, batch, framework): samples/s, GFLOP/s, fraction of matmul.

    The frameworks of one (network, batch) are timed in turns (`time_interleaved`: 5 rounds,
    0.25 s of untimed steps before each turn, best round reported, median beside it), so
    that load from elsewhere hits them alike.
    """
    nets = QUICK_NETWORKS if quick else {k: NETWORKS[k] for k in (networks or DEFAULT_NETWORKS)}
    batches = batches or ((8, 32) if quick else DEFAULT_BATCHES)
    min_time, rounds, settle = (0.01, 1, 0.0) if quick else (1.5, 5, 0.25)
    rows = []
    for net, (sizes, kind) in nets.items():
        p = n_params(sizes)
        for batch in batches:
            steps, failed, order = {}, {}, []
            for label, fn in _candidates(sizes, kind, batch, threads, frameworks):
                order.append(label)
                try:
                    step = fn()
                    step()  # one call first: a framework that fails is a row, not a crash
                    steps[label] = step
                except Exception as exc:  # noqa: BLE001
                    failed[label] = f"{type(exc).__name__}: {exc}"
            timed = time_interleaved(steps, rounds=rounds, min_time=min_time,
                                     warmup=1 if quick else 2, settle=settle)
            for label in order:
                row = {"network": net, "sizes": sizes, "loss": kind, "parameters": p,
                       "batch": batch, "framework": label}
                if label in failed:
                    row["error"] = failed[label]
                else:
                    sec, median = timed[label]
                    gflops = 6 * p * batch / sec / 1e9
                    row.update(seconds_per_step=sec, seconds_median=median,
                               samples_per_s=batch / sec, gflops=gflops,
                               fraction_of_matmul=gflops / matmul_gflops if matmul_gflops else None)
                rows.append(row)
    return rows


def _candidates(sizes, kind, batch, threads, frameworks):
    """(label, zero-argument step builder) for each framework asked for and installed."""
    out = []
    if "gradfit" in frameworks:
        try:
            steps = gradfit_steps(sizes, kind, batch)
            out += [(label, (lambda f=f: f)) for label, f in steps.items()]
        except Exception as exc:  # noqa: BLE001 - reported as a row
            out.append(("gradfit", _raiser(exc)))
    if "torch" in frameworks:
        if _importable("torch"):
            import torch
            out.append((f"torch {torch.__version__} Adam(fused=True)",
                        lambda: torch_step(sizes, kind, batch, threads)))
        else:
            out.append(("torch", _raiser(ImportError("not installed: pip install torch==2.13.0"))))
    if gpu_available():
        out.append(("gradfit cupy (GPU)", lambda: gradfit_gpu_step(sizes, kind, batch)))
        if "torch" in frameworks and _importable("torch"):
            import torch
            if torch.cuda.is_available():
                out.append((f"torch {torch.__version__} CUDA Adam(fused=True)",
                            lambda: torch_cuda_step(sizes, kind, batch)))
    if "keras" in frameworks:
        if not _importable("keras"):
            out.append(("keras", _raiser(ImportError("not installed: pip install 'keras>=3'"))))
            return out
        try:
            step, label = keras_step(sizes, kind, batch)
            out.append((label, lambda s=step: s))
        except Exception as exc:  # noqa: BLE001
            out.append(("keras", _raiser(exc)))
    return out


def _raiser(exc):
    def fail():
        raise exc
    return fail


def _importable(name) -> bool:
    return optional(name) is not None
