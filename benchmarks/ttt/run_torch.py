"""PyTorch's run, written for CPU speed as a PyTorch user who cares would write it.

* The whole training set is one float32 tensor and one int64 tensor made before the clock; each
  epoch draws ``torch.randperm`` and takes batches by ``index_select``: no DataLoader, no
  collation, no per-batch numpy conversion.  Equal-size batches (``n // B`` per epoch, the
  remainder sits the epoch out, different rows each epoch), as gradfit's fit.
* ``torch.set_num_threads(threads)``, ``set_num_interop_threads(1)`` (nothing runs concurrently).
* The optimizer kernel: ``fused=True`` or ``foreach=True``, whichever is faster here: both are
  timed in the warm-up (best of 3 rounds of 30 steps, taking turns) and the faster one is used;
  both times are recorded.
* The learning rate decays per step by ``LinearLR`` (linear) or ``LambdaLR`` of the recipe's
  cosine (``CosineAnnealingLR`` would rise again after ``T_max``), stepped after each update.
* Evaluation: ``torch.inference_mode()``, the whole evaluation split in one forward pass.
* ``zero_grad(set_to_none=True)`` (the default), ``F.cross_entropy`` on logits.

Warm-up (outside the clock): the optimizer comparison above and one evaluation, on the model
itself; then the initial weights are loaded back, a fresh optimizer and scheduler are made and
the seed is set again.  The clock starts right before the first epoch's permutation.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def build(recipe, n_in, n_out, seed):
    torch.manual_seed(seed)
    layers, width = [], n_in
    for h in recipe.hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[recipe.activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear):
            if recipe.init == "glorot_uniform":
                nn.init.xavier_uniform_(m.weight)
            else:   # lecun_normal truncated at 2 std: AlgoPerf's pytorch_default_init
                std = (1.0 / m.in_features) ** 0.5 / 0.87962566103423978
                nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.bias)
    return model


def make_optimizer(recipe, params, impl):
    kw = {impl: True} if impl in ("fused", "foreach") else {}
    betas = (recipe.beta_1, recipe.beta_2)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.learning_rate, betas=betas, eps=recipe.epsilon, **kw)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.learning_rate, betas=betas, eps=recipe.epsilon,
                                 weight_decay=recipe.weight_decay, **kw)
    return torch.optim.SGD(params, lr=recipe.learning_rate, momentum=recipe.momentum,
                           nesterov=recipe.nesterov, **kw)


def make_scheduler(recipe, opt, steps_per_epoch):
    n = recipe.decay_steps(steps_per_epoch)
    if recipe.schedule == "linear":
        return torch.optim.lr_scheduler.LinearLR(opt, 1.0, recipe.end_fraction, total_iters=n)
    if recipe.schedule == "cosine":
        # CosineAnnealingLR would climb back up after T_max; the recipe holds the end rate
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: recipe.lr_at(i, steps_per_epoch) / recipe.learning_rate)
    return None


def train_step(model, opt, sched, xb, yb):
    loss = F.cross_entropy(model(xb), yb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()


def time_impls(model, recipe, impls, x, y, b, steps=30, rounds=3) -> dict:
    """Seconds per training step with each optimizer kernel: best of ``rounds`` rounds of
    ``steps`` steps, the kernels taking turns in every round (so none is always timed first,
    on a cold machine).  A kernel this torch build lacks for the optimizer reports why."""
    opts, best = {}, {}
    for impl in impls:
        try:
            opts[impl] = make_optimizer(recipe, model.parameters(), impl)
            train_step(model, opts[impl], None, x[:b], y[:b])     # fails here if unsupported
            best[impl] = float("inf")
        except (RuntimeError, TypeError) as exc:
            best[impl] = f"unavailable: {exc}"
            opts.pop(impl, None)
    for _ in range(rounds):
        for impl, opt in opts.items():
            t = time.perf_counter()
            for k in range(steps):
                rows = (torch.arange(b) + k * b) % len(x)
                train_step(model, opt, None, x[rows], y[rows])
            best[impl] = min(best[impl], (time.perf_counter() - t) / steps)
    return best


def run(workload, recipe, seed, threads, clock, impl="auto") -> dict:
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    x = torch.from_numpy(workload.x_train).contiguous()
    y = torch.from_numpy(workload.y_train).long()
    xe = torch.from_numpy(workload.x_eval).contiguous()
    ye = torch.from_numpy(workload.y_eval).long()
    n, b = len(x), recipe.batch_size
    steps = n // b
    model = build(recipe, x.shape[1], 10, seed)
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def accuracy():
        model.eval()
        with torch.inference_mode():
            acc = (model(xe).argmax(1) == ye).float().mean().item()
        model.train()
        return acc

    timings = time_impls(model, recipe, ("fused", "foreach") if impl == "auto" else (impl,), x, y, b)
    usable = {k: v for k, v in timings.items() if isinstance(v, float)}
    if not usable:
        raise SystemExit(f"no usable torch optimizer implementation: {timings}")
    impl = min(usable, key=usable.get)
    accuracy()
    model.load_state_dict(initial)
    opt = make_optimizer(recipe, model.parameters(), impl)
    sched = make_scheduler(recipe, opt, steps)
    gen = torch.Generator().manual_seed(seed)

    clock.start()
    for epoch in range(recipe.max_epochs):
        perm = torch.randperm(n, generator=gen)
        for k in range(steps):
            idx = perm[k * b:(k + 1) * b]
            train_step(model, opt, sched, x.index_select(0, idx), y.index_select(0, idx))
        if clock.epoch_end(epoch, accuracy):
            break
    test = None
    if workload.x_test is not None:
        with torch.inference_mode():
            xt, yt = torch.from_numpy(workload.x_test), torch.from_numpy(workload.y_test)
            test = (model(xt).argmax(1) == yt).float().mean().item()
    return {"steps_per_epoch": steps, "test_accuracy_after": test,
            "impl": {"optimizer": type(opt).__name__, "kernel": impl,
                     "warmup_step_seconds": {k: v for k, v in timings.items()},
                     "torch_threads": torch.get_num_threads(),
                     "interop_threads": torch.get_num_interop_threads(),
                     "mkldnn": torch.backends.mkldnn.is_available(),
                     "mkl": torch.backends.mkl.is_available()}}
