"""The fully connected layer: z = x W + b, a = f(z)."""
from __future__ import annotations

from .. import initializers, regularizers
from ..backend import xp
from ..checks import check_int
from . import activations
from .base import Layer

#: Up to this batch size ``dx = dz W^T`` is computed as ``(W dz^T)^T`` into a scratch buffer
#: and copied back transposed.  OpenBLAS (0.3.31, SkylakeX) is slow on a product whose large
#: right operand is transposed while the left one has few rows: for the lecture's 1000x2000
#: layer, 0.68 ms at batch 8 and 1.18 ms at 32 directly, 0.41 and 0.85 ms this way
#: (transposed copy included).  Alone the product still gains at 128, but inside a training
#: step the scratch buffer's traffic made batch 128 3-6% slower, so the switch is at 64
#: (`benchmarks/dense_products.py --step`).
TRANSPOSED_DX_MAX = 64


class Dense(Layer):
    """``Dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
    bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
    input_shape=None)``, as in Keras (regularizers: see `gradfit.regularizers`).

    Forward, for x of shape (B, n_in), kernel W (n_in, units), bias b (units,)::

        z = x W + b          (B, units)
        a = f(z)             (B, units), computed in place over z

    Backward, given da = dL/da (B, units)::

        dz = da * f'(z)      (in place over da; skipped when the loss is fused with f)
        dW = x^T dz          (n_in, units), written straight into the flat gradient buffer
        db = sum_batch dz    (units,)
        dx = dz W^T          (B, n_in), only when a layer before needs it

    When the model fuses this layer's softmax/sigmoid with the loss (`keep_logits`), z is kept
    in its own buffer (``self.logits``) and the loss hands back dz directly.

    Second order (Pearlmutter 1994): R{.} = d/de (.)(w + e v) along a direction v = (V, v_b)
    of the weights, as used by `gradfit.curvature` for exact Hessian-vector products::

        R{z}  = R{x} W + x V + v_b                       (B, units)
        R{a}  = f'(z) R{z}
        R{dz} = f'(z) R{da} + da f''(z) R{z}             (activations: ``second``)
        R{dW} = R{x}^T dz + x^T R{dz}                    (n_in, units): the rows of H v
        R{db} = sum_batch R{dz}
        R{dx} = R{dz} W^T + dz V^T
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 input_shape=None, input_dim=None, name=None):
        super().__init__(name)
        self.units = check_int("units", units, 1)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer)
        initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.declared_input_dim = _input_dim(input_shape, input_dim)
        self.keep_logits = False

    def build(self, input_dim):
        self.input_dim = input_dim
        self.output_dim = self.units
        return self.units

    def param_shapes(self):
        shapes = [("kernel", (self.input_dim, self.units))]
        if self.use_bias:
            shapes.append(("bias", (self.units,)))
        return shapes

    def initial_values(self, rng):
        init = {"kernel": initializers.get(self.kernel_initializer)((self.input_dim, self.units), rng)}
        if self.use_bias:
            init["bias"] = initializers.get(self.bias_initializer)((self.units,), rng)
        return init

    def bind(self, params, grads):
        super().bind(params, grads)
        self.kernel, self.kernel_grad = params["kernel"], grads["kernel"]
        self.bias = params.get("bias")
        self.bias_grad = grads.get("bias")

    def forward(self, x, training=False):
        B = x.shape[0]
        self._x = x
        z = self._buffer("z", (B, self.units))
        _product(x, self.kernel, z)
        if self.use_bias:
            z += self.bias
        a = self._buffer("a", (B, self.units)) if self.keep_logits else z
        self._a = self.activation.forward(z, a)
        self.logits = z
        return self._a

    def backward(self, dy, skip_activation=False):
        x_ = xp()
        dz = dy if skip_activation else self.activation.backward(self._a, dy, dy)
        self._dz = dz
        B = dz.shape[0]
        _product(self._x.T, dz, self.kernel_grad)
        if self.use_bias:
            dz.sum(axis=0, out=self.bias_grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", (B, self.input_dim))
        if B <= TRANSPOSED_DX_MAX and self.units > 1:
            dx_t = self._buffer("dx_t", (self.input_dim, B))
            x_.matmul(self.kernel, dz.T, out=dx_t)
            dx[...] = dx_t.T
            return dx
        return _product(dz, self.kernel.T, dx)

    def r_forward(self, rx, v, skip_activation=False):
        """R{a} (or R{z} with ``skip_activation``) of the last ``forward``; rx = R{x} or None
        (the input does not depend on the weights: this is the first layer with weights)."""
        x_ = xp()
        rz = x_.matmul(self._x, v["kernel"])
        if rx is not None:
            rz += x_.matmul(rx, self.kernel)
        if self.use_bias:
            rz += v["bias"]
        self._rx, self._rz = rx, rz
        if skip_activation:
            return rz
        return self.activation.backward(self._a, rz, x_.empty_like(rz))

    def r_backward(self, dy, rdy, v, grads, hv, skip_activation=False):
        """(dx, R{dx}) from dy = dL/da and R{dy} (dL/dz and R{dL/dz} with ``skip_activation``);
        writes dW, db into ``grads`` (unless None) and R{dW}, R{db} into ``hv``.  Returns
        (None, None) for the first layer with weights.  New arrays: dy, rdy stay intact."""
        x_ = xp()
        if skip_activation:
            dz, rdz = dy, rdy
        else:
            dz = self.activation.backward(self._a, dy, x_.empty_like(dy))
            rdz = self.activation.backward(self._a, rdy, x_.empty_like(rdy))
            extra = self.activation.second(self._a, dy, self._rz)
            if extra is not None:
                rdz += extra
        if grads is not None:
            x_.matmul(self._x.T, dz, out=grads["kernel"])
        x_.matmul(self._x.T, rdz, out=hv["kernel"])
        if self._rx is not None:
            hv["kernel"] += x_.matmul(self._rx.T, dz)
        if self.use_bias:
            if grads is not None:
                dz.sum(axis=0, out=grads["bias"])
            rdz.sum(axis=0, out=hv["bias"])
        if not self.needs_input_grad:
            return None, None
        rdx = x_.matmul(rdz, self.kernel.T)
        rdx += x_.matmul(dz, v["kernel"].T)
        return x_.matmul(dz, self.kernel.T), rdx

    def add_penalty_hvp(self, v, hv) -> None:
        """``hv += (d^2 penalty / dw^2) v``: 2 l2 v for the L2 part of each regularizer (the L1
        part, l1 |w|, has zero second derivative away from w = 0)."""
        for reg, name in ((self.kernel_regularizer, "kernel"), (self.bias_regularizer, "bias")):
            if reg is not None and reg.l2 and name in hv:
                hv[name] += (2.0 * reg.l2) * v[name]

    def penalty(self, add_gradients=False) -> float:
        """The weight penalties of ``kernel_regularizer`` / ``bias_regularizer``; with
        ``add_gradients`` their gradients are added to the kernel's and bias's gradients."""
        value = 0.0
        for reg, w, g in ((self.kernel_regularizer, self.kernel, self.kernel_grad),
                          (self.bias_regularizer, self.bias, self.bias_grad)):
            if reg is not None and w is not None:
                value += reg(w)
                if add_gradients:
                    reg.add_gradient(w, g)
        return value

    @property
    def regularized(self) -> bool:
        return self.kernel_regularizer is not None or \
            (self.use_bias and self.bias_regularizer is not None)

    def io(self):
        """(input x, gradient w.r.t. pre-activation dz) of the last forward/backward pair."""
        return self._x, self._dz

    def get_config(self):
        return {
            "units": self.units,
            "activation": activations.config_of(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "input_dim": self.declared_input_dim,
            "name": self.name,
        }


def _product(a, b, out):
    """``out = a @ b``; a broadcast multiply when the inner dimension is 1 (an outer product:
    batch 1 for dW, one unit for dx, one input for z), which OpenBLAS computes 4x slower
    (dW of the lecture's 1000x2000 layer at batch 1: 2.2 ms vs 0.5 ms; dx of its 2000->1
    layer at batch 1024: 2.3 vs 0.55 ms)."""
    if a.shape[1] == 1:
        return xp().multiply(a, b, out=out)
    return xp().matmul(a, b, out=out)


def _input_dim(input_shape, input_dim):
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 1:
            raise ValueError(
                f"input_shape must be a 1-tuple like (784,) for Dense networks, got {input_shape!r}; "
                "flatten images first (x.reshape(len(x), -1))"
            )
        return check_int("input_shape[0]", shape[0], 1)
    if input_dim is not None:
        return check_int("input_dim", input_dim, 1)
    return None
