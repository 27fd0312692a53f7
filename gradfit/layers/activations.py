"""Activation functions as forward/backward pairs, and the `Activation` layer.

Each function works in place where it can: ``forward(z, out)`` writes a = f(z) into `out`
(which may be `z` itself) and ``backward(a, da, out)`` writes dz = da * f'(z) into `out`
(which may be `da`), using only the OUTPUT a: every derivative here is a function of the
output, so a layer need not keep its pre-activation.

**Second order** (Pearlmutter 1994, the R-operator R{.} = d/de (.)(w + e v) at e = 0, used by
`gradfit.curvature` for exact Hessian-vector products).  Every Jacobian f'(z) here is
symmetric (diagonal, or softmax's diag(a) - a a^T), so ``backward(a, rz, out)`` is also the
forward R-operator R{a} = f'(z) R{z}.  Differentiating dz = f'(z) da once more gives

    R{dz} = f'(z) R{da}  +  second(a, da, rz),     second = da * f''(z) * R{z}

(softmax: the vector form in ``Softmax.second``).  ``second`` returns None where f'' = 0
(linear, ReLU and leaky ReLU away from the kink, where the Hessian is taken as 0).

Shapes: z, a, da, dz, rz are (batch, units).
"""
from __future__ import annotations

from ..backend import xp
from ..checks import check_choice
from .base import Layer


class Linear:
    name = "linear"

    def forward(self, z, out):
        if out is not z:
            out[...] = z
        return out

    def backward(self, a, da, out):
        if out is not da:
            out[...] = da
        return out

    def second(self, a, da, rz):
        """f'' = 0."""
        return None


class ReLU:
    """a = max(z, 0); f'(z) = 1 where a > 0 else 0."""
    name = "relu"

    def forward(self, z, out):
        return xp().maximum(z, 0, out=out)

    def backward(self, a, da, out):
        return xp().multiply(da, a > 0, out=out)

    def second(self, a, da, rz):
        """f'' = 0 (away from z = 0, where f'' is undefined and taken as 0)."""
        return None


class LeakyReLU:
    """a = z if z > 0 else alpha z (alpha = 0.2, Keras's `leaky_relu` activation default)."""
    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        if not 0 <= negative_slope < 1:
            raise ValueError(f"negative_slope must be in [0, 1), got {negative_slope!r}")
        self.negative_slope = negative_slope

    def forward(self, z, out):
        x = xp()
        return x.multiply(z, x.where(z > 0, 1.0, self.negative_slope).astype(z.dtype), out=out)

    def backward(self, a, da, out):
        x = xp()
        return x.multiply(da, x.where(a > 0, 1.0, self.negative_slope).astype(da.dtype), out=out)

    def second(self, a, da, rz):
        """f'' = 0 (away from z = 0)."""
        return None


class Sigmoid:
    """a = 1 / (1 + exp(-z)), computed without overflow; f'(z) = a (1 - a)."""
    name = "sigmoid"

    def forward(self, z, out):
        x = xp()
        # exp(-|z|) never overflows; branch on the sign of z.
        e = x.exp(-x.abs(z))
        pos = z >= 0
        x.divide(x.where(pos, 1.0, e).astype(z.dtype), 1.0 + e, out=out)
        return out

    def backward(self, a, da, out):
        x = xp()
        x.multiply(da, a * (1 - a), out=out)
        return out

    def second(self, a, da, rz):
        """da * f''(z) * rz with f'' = a (1 - a) (1 - 2a)."""
        return da * (a * (1 - a) * (1 - 2 * a)) * rz


class Tanh:
    """a = tanh(z); f'(z) = 1 - a^2."""
    name = "tanh"

    def forward(self, z, out):
        return xp().tanh(z, out=out)

    def backward(self, a, da, out):
        return xp().multiply(da, 1 - a * a, out=out)

    def second(self, a, da, rz):
        """da * f''(z) * rz with f'' = -2 a (1 - a^2)."""
        return da * (-2.0 * a * (1 - a * a)) * rz


class Softmax:
    """a_j = exp(z_j - max z) / sum_k exp(z_k - max z) over the last axis.

    Backward: dz = a * (da - sum_j da_j a_j), the Jacobian-vector product of softmax.
    Second order: with ra = R{a} = a * (rz - sum_j a_j rz_j) and s = sum_j da_j a_j,
    R{dz} = a * (R{da} - sum_j R{da}_j a_j) + ra * (da - s) - a * sum_j da_j ra_j.
    """
    name = "softmax"

    def forward(self, z, out):
        x = xp()
        x.subtract(z, z.max(axis=1, keepdims=True), out=out)
        x.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def backward(self, a, da, out):
        x = xp()
        s = (da * a).sum(axis=1, keepdims=True)
        x.subtract(da, s, out=out)
        out *= a
        return out

    def second(self, a, da, rz):
        """ra * (da - sum(da a)) - a * sum(da ra), ra = R{a} (see the class docstring)."""
        ra = self.backward(a, rz, xp().empty_like(rz))
        return ra * (da - (da * a).sum(axis=1, keepdims=True)) \
            - a * (da * ra).sum(axis=1, keepdims=True)


ACTIVATIONS = {
    "linear": Linear,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def config_of(activation):
    """What `get` rebuilds `activation` from: its name, or a dict when it has settings."""
    slope = getattr(activation, "negative_slope", None)
    if slope is not None and slope != 0.2:
        return {"name": activation.name, "negative_slope": slope}
    return activation.name


def get(name):
    """The activation object for `name` (None means linear; a dict from `config_of` too)."""
    if name is None:
        name = "linear"
    if isinstance(name, dict):
        settings = {k: v for k, v in name.items() if k != "name"}
        check_choice("activation", name.get("name"), ACTIVATIONS)
        return ACTIVATIONS[name["name"]](**settings)
    if not isinstance(name, str):
        if hasattr(name, "forward") and hasattr(name, "backward"):
            return name
        raise TypeError(f"activation must be a name or an activation object, got {name!r}")
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


class Activation(Layer):
    """A layer applying an activation function: ``Activation("relu")``.

    Forward: (B, n) -> (B, n). Backward: dz = da * f'(z) from the kept output a.
    """

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation = get(activation)

    def build(self, input_dim):
        return super().build(input_dim) or input_dim

    def forward(self, x, training=False):
        self._x = x
        self._a = self.activation.forward(x, self._buffer("a", x.shape))
        return self._a

    def backward(self, dy, skip_activation=False):
        if skip_activation:
            return dy
        return self.activation.backward(self._a, dy, self._buffer("dx", dy.shape))

    def r_forward(self, rx, v, skip_activation=False):
        """R{a} = f'(x) R{x} (None when R{x} is: nothing before depends on the weights)."""
        self._rx = rx
        if skip_activation or rx is None:
            return rx
        return self.activation.backward(self._a, rx, xp().empty_like(rx))

    def r_backward(self, dy, rdy, v, grads, hv, skip_activation=False):
        """(dx, R{dx}) = (f' dy, f' R{dy} + dy f'' R{x}); new arrays, dy is left intact."""
        if skip_activation:
            return dy, rdy
        x = xp()
        dx = self.activation.backward(self._a, dy, x.empty_like(dy))
        rdx = self.activation.backward(self._a, rdy, x.empty_like(rdy))
        if self._rx is not None:
            extra = self.activation.second(self._a, dy, self._rx)
            if extra is not None:
                rdx += extra
        return dx, rdx

    @property
    def logits(self):
        return self._x

    def get_config(self):
        return {"activation": config_of(self.activation), "name": self.name}
