"""A built `Sequential` and a loss seen as functions of the flat weights: the passes that the
curvature computations (`hvp`, `jacobian`) are made of.

Where the loss meets the network (the *head*): when the last layer's activation is the one the
loss fuses with (softmax + categorical cross-entropy, sigmoid + binary cross-entropy, as
`Sequential.compile` decides), the loss is taken on that layer's logits z and the activation's
own derivatives are skipped, exactly as in training; otherwise on the outputs.

Conventions (those of `gradfit.losses`): the objective of a batch of rows is
``L = sum_i l_i / denom``; every pass here returns sums over the rows it is given, divided by
``denom``, so that the sum over row blocks (and over MPI ranks) is the full-batch quantity.
Weight penalties are NOT included here (they must be added once, after such a sum): see
`add_penalty_gradient` and `add_penalty_hvp`.

Dropout: with ``training=False`` (the default) dropout is off, as in inference; with
``training=True`` the forward pass draws masks and the R-operator holds them fixed.
"""
from __future__ import annotations

import numpy as np

from .. import losses
from ..backend import xp


class Network:
    """``Network(model, loss, training=False)``: passes over a built model for one loss.

    ``size`` is the number of weights n; ``fused`` whether the loss is taken on the last
    layer's logits.  The model's layers keep the caches of the last ``forward``; each method
    documents which pass it needs to have run first.
    """

    def __init__(self, model, loss, training: bool = False):
        if not model.built:
            raise ValueError("the model is not built: call model.build() or run it on data first")
        self.model = model
        self.loss = losses.get(loss)
        self.training = bool(training)
        last = model.layers[-1]
        act = getattr(last, "activation", None)
        self.fused = act is not None and act.name == self.loss.fuses_with
        # The fused head needs the logits in their own buffer (what compile sets up); setting
        # it never breaks the unfused path, which reads the returned outputs.
        if self.fused and hasattr(last, "keep_logits") and not last.keep_logits:
            last.keep_logits = True
            last.release_buffers()
        self.size = model.flat.size
        self.dtype = model.dtype

    # -- flat arrays as per-layer views ---------------------------------------------------
    def views(self, flat) -> list[dict]:
        """Per layer, dict name -> reshaped view of the flat array `flat` (model's offsets)."""
        out = [dict() for _ in self.model.layers]
        for e in self.model.flat.entries:
            out[e.layer][e.name] = flat[e.start:e.stop].reshape(e.shape)
        return out

    def describe(self) -> str:
        """The widths, input first, as the lecture writes a network: ``'784-100-10'``."""
        widths = [str(self.model.input_dim)]
        widths += [str(layer.units) for layer in self.model.layers if hasattr(layer, "units")]
        return "-".join(widths)

    # -- passes -----------------------------------------------------------------------------
    def forward(self, x):
        """Outputs (B, d) of rows x; fills the layers' caches (a layer-owned buffer)."""
        return self.model.forward(x, training=self.training)

    def head_input(self, out):
        """What the loss is taken on after ``forward``: the logits when fused, else `out`."""
        return self.model.layers[-1].logits if self.fused else out

    def loss_and_output_grad(self, out, y, denom):
        """(sum_i l_i / denom, dL/d(head input)) after ``forward``; the gradient is a new array."""
        dy = xp().empty_like(out)
        if self.fused:
            value, dy = self.loss.value_and_grad_from_logits(self.head_input(out), y, dy, denom,
                                                             probs=out)
        else:
            value, dy = self.loss.value_and_grad(out, y, dy, denom)
        return value, dy

    def loss_hessian_vector(self, out, y, r, denom):
        """H r of the loss w.r.t. the head input, row by row, after ``forward``."""
        if self.fused:
            return self.loss.hessian_vector_from_logits(self.head_input(out), y, r, denom,
                                                        probs=out)
        return self.loss.hessian_vector(out, y, r, denom)

    def loss_hessian_factor(self, out, y, denom):
        """S (B, d, d), S_i^T S_i = H_i, of the loss w.r.t. the head input (see losses.py)."""
        if self.fused:
            return self.loss.hessian_factor_from_logits(self.head_input(out), y, denom,
                                                        probs=out)
        return self.loss.hessian_factor(out, y, denom)

    def backward(self, dy) -> None:
        """The plain backward pass (the transposed Jacobian of the head input applied to dy):
        fills ``model.grads`` and each Dense layer's ``io()``; `dy` is overwritten."""
        skip = self.fused
        for layer in reversed(self.model.layers):
            dy = layer.backward(dy, skip_activation=skip)
            skip = False
            if dy is None:
                break

    def r_forward(self, v_views):
        """R{head input} = J v along the direction whose per-layer views are `v_views`."""
        layers = self.model.layers
        r = None
        for i, layer in enumerate(layers):
            r = layer.r_forward(r, v_views[i], skip_activation=self.fused and i == len(layers) - 1)
        return r

    def r_backward(self, dy, rdy, v_views, hv_views, grad_views=None) -> None:
        """Backward and R-backward together: writes H v (data part) into `hv_views` and, unless
        None, the gradient into `grad_views`.  `dy`, `rdy` are left intact."""
        layers = self.model.layers
        skip = self.fused
        for i in reversed(range(len(layers))):
            g = None if grad_views is None else grad_views[i]
            dy, rdy = layers[i].r_backward(dy, rdy, v_views[i], g, hv_views[i],
                                           skip_activation=skip)
            skip = False
            if dy is None:
                break

    # -- weight penalties (add once, after any sum over blocks or ranks) ----------------------
    def penalty(self) -> float:
        """Sum of the layers' weight penalties at the model's weights (0 without any)."""
        return self.model.regularization(add_gradients=False)

    def add_penalty_gradient(self, grad) -> float:
        """``grad += d(penalty)/dw`` (flat array); returns the penalty."""
        model = self.model
        if not model.regularized:
            return 0.0
        model.grads[...] = grad
        value = model.regularization(add_gradients=True)
        grad[...] = model.grads
        return value

    def add_penalty_hvp(self, v, hv) -> None:
        """``hv += (d^2 penalty/dw^2) v`` (flat arrays)."""
        if not self.model.regularized:
            return
        vv, hvv = self.views(v), self.views(hv)
        for i, layer in enumerate(self.model.layers):
            if layer.regularized:
                layer.add_penalty_hvp(vv[i], hvv[i])

    def penalty_curvature(self) -> np.ndarray | None:
        """The diagonal of the penalties' Hessian (2 l2 per weight under an L2 part; the
        penalties are separable, so that is the whole Hessian), or None without penalties."""
        if not self.model.regularized:
            return None
        diag = xp().zeros(self.size, dtype=self.dtype)
        self.add_penalty_hvp(xp().ones(self.size, dtype=self.dtype), diag)
        return diag
