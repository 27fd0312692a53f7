"""Where a gradfit training step spends its time: per layer, forward and backward, the loss
and the optimizer update, each timed alone (best of a few repeats, seconds per step).

The matmul share is estimated by timing the same products on the same shapes with
``np.matmul(..., out=)``: forward ``x W`` per Dense layer, backward ``x^T dz`` and (except
for the first layer) ``dz W^T``.  What is left of the layer's time is elementwise work
(bias, activation and its derivative, the bias-gradient sum, temporaries).
"""
from __future__ import annotations

import numpy as np

from .timing import time_call
from .training import gradfit_model, make_data


def _best(fn, repeats=5):
    """Seconds per call: the shared timer, `repeats` bursts of about 20 ms each."""
    return time_call(fn, min_time=0.02 * repeats, repeats=repeats)


def profile_step(sizes, kind, batch, repeats=5) -> dict:
    """{"rows": [(part, seconds)], "total": seconds, "matmul": seconds} for one step."""
    from ..backend import xp
    model = gradfit_model(sizes, kind)
    x, y = make_data(sizes, kind, batch)
    model.train_on_batch(x, y)
    xd = xp().asarray(x)
    yd = xp().asarray(model.check_targets(y, len(x)))
    layers = model.layers
    rows = []
    # forward, layer by layer, on the stored inputs of the previous forward pass
    inputs = []
    h = xd
    for layer in layers:
        inputs.append(h)
        h = layer.forward(h, training=True)
    for i, layer in enumerate(layers):
        rows.append((f"forward  {type(layer).__name__} {i} ({layer.input_dim}->{layer.output_dim})",
                     _best(lambda l=layer, a=inputs[i]: l.forward(a, training=True), repeats)))
    model.forward(xd, training=True)
    y_pred = layers[-1]._a
    rows.append(("loss value + gradient", _best(lambda: model.batch_loss(y_pred, yd), repeats)))

    def full_backward():
        model.compute_gradients(xd, yd)
    # backward alone = full forward+backward minus forward, per layer by difference is noisy;
    # time each layer's backward on a saved upstream gradient instead
    model.compute_gradients(xd, yd)
    _, dy = model.batch_loss(model.forward(xd, training=True), yd)
    ups = []
    skip = model._fused
    for layer in reversed(layers):
        ups.append((layer, dy.copy(), skip))
        dy = layer.backward(dy, skip_activation=skip)
        skip = False
        if dy is None:
            break
    for layer, d0, sk in ups:
        buf = d0.copy()

        def back(layer=layer, d0=d0, buf=buf, sk=sk):
            np.copyto(buf, d0)  # backward may work in place on its upstream gradient
            layer.backward(buf, skip_activation=sk)
        copy = _best(lambda: np.copyto(buf, d0), repeats)
        idx = layers.index(layer)
        rows.append((f"backward {type(layer).__name__} {idx}", max(_best(back, repeats) - copy, 0.0)))
    rows.append(("optimizer update (" + type(model.optimizer).__name__ + ")",
                 _best(lambda: model.optimizer.update(model.params, model.grads, model.opt_state),
                       repeats)))
    total = _best(lambda: (full_backward(),
                           model.optimizer.update(model.params, model.grads, model.opt_state)),
                  repeats)
    return {"network": "-".join(map(str, sizes)), "batch": batch,
            "rows": rows, "sum_of_parts": sum(s for _, s in rows), "total": total,
            "matmul": _matmul_time(sizes, batch, repeats)}


def _matmul_time(sizes, batch, repeats) -> float:
    """Seconds of the step's matrix products alone (np.matmul with out=, float32)."""
    rng = np.random.default_rng(0)
    total = 0.0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = rng.standard_normal((batch, a)).astype(np.float32)
        w = rng.standard_normal((a, b)).astype(np.float32)
        z = np.empty((batch, b), np.float32)
        dw = np.empty((a, b), np.float32)
        total += _best(lambda: np.matmul(x, w, out=z), repeats)
        total += _best(lambda: np.matmul(x.T, z, out=dw), repeats)
        if i > 0:
            dx = np.empty((batch, a), np.float32)
            total += _best(lambda: np.matmul(z, w.T, out=dx), repeats)
    return total


def format_profile(prof: dict) -> str:
    lines = [f"Profile of one gradfit step, {prof['network']} at batch {prof['batch']} "
             f"(total {prof['total'] * 1e3:.3f} ms; sum of parts {prof['sum_of_parts'] * 1e3:.3f} ms; "
             f"its matmuls alone {prof['matmul'] * 1e3:.3f} ms)"]
    for name, sec in prof["rows"]:
        lines.append(f"  {name:<48}{sec * 1e3:>10.3f} ms {100 * sec / prof['total']:>6.1f}%")
    return "\n".join(lines)
