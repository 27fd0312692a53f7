"""The layer protocol: build, parameter shapes, forward/backward, preallocated buffers."""
from __future__ import annotations

from ..backend import xp

_counts: dict[str, int] = {}


def _unique_name(prefix: str) -> str:
    _counts[prefix] = _counts.get(prefix, 0) + 1
    n = _counts[prefix]
    return prefix if n == 1 else f"{prefix}_{n - 1}"


class Layer:
    """A forward/backward pair of pure maths over (batch, features) arrays.

    Life cycle, driven by `Sequential`:
      1. ``build(input_dim) -> output_dim`` fixes the shapes;
      2. ``param_shapes()`` lists ``(name, shape)`` of the parameters, in Keras's order;
      3. ``bind(params, grads)`` hands the layer views into the model's ONE flat parameter
         buffer and ONE flat gradient buffer (dicts name -> view);
      4. ``forward(x, training)`` and ``backward(dy) -> dx`` write into buffers preallocated per
         batch shape (`_buffer`), so a training step allocates no large arrays.

    The output of `forward` and `backward` is a layer-owned buffer, valid until the next call
    with the same batch size: copy it to keep it.
    """

    #: whether `backward` must compute the gradient w.r.t. the input (False for the first layer)
    needs_input_grad = True
    dtype = None

    def __init__(self, name=None):
        self.name = name or _unique_name(type(self).__name__.lower())
        self.input_dim = None
        self.output_dim = None
        self._buffers: dict = {}

    # -- shapes and parameters ------------------------------------------------------------
    def build(self, input_dim: int) -> int:
        self.input_dim = input_dim
        self.output_dim = input_dim
        return input_dim

    def param_shapes(self) -> list[tuple[str, tuple]]:
        return []

    def initial_values(self, rng) -> dict:
        """float64 initial values of every parameter, drawn from `rng` (name -> array)."""
        return {}

    def bind(self, params: dict, grads: dict) -> None:
        self.params, self.grads = params, grads

    def count_params(self) -> int:
        n = 0
        for _, shape in self.param_shapes():
            k = 1
            for s in shape:
                k *= s
            n += k
        return n

    #: whether the layer adds a weight penalty to the loss (see ``penalty``)
    regularized = False

    def penalty(self, add_gradients: bool = False) -> float:
        """This layer's weight penalty (0 without regularizers)."""
        return 0.0

    # -- maths ----------------------------------------------------------------------------
    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy, skip_activation: bool = False):
        raise NotImplementedError

    # -- second order (Pearlmutter's R-operator; driven by gradfit.curvature) -------------
    def r_forward(self, rx, v, skip_activation: bool = False):
        """R{y} = d/de y(w + e v) of the last ``forward``, given R{x} of its input (None: 0).

        `v` holds this layer's slice of the direction (dict name -> view, like ``params``).
        Called after ``forward`` on the same batch; keeps what ``r_backward`` needs."""
        raise NotImplementedError(
            f"{type(self).__name__} has no R-operator: exact Hessian-vector products support "
            "Dense, Activation, Dropout and Flatten layers")

    def r_backward(self, dy, rdy, v, grads, hv, skip_activation: bool = False):
        """(dx, R{dx}) from (dy, R{dy}), writing this layer's gradient into ``grads`` (a dict
        of views, or None to skip it) and its Hessian-vector product R{dL/dw} into ``hv``.
        New arrays: ``dy`` and ``rdy`` are left intact."""
        raise NotImplementedError(
            f"{type(self).__name__} has no R-operator: exact Hessian-vector products support "
            "Dense, Activation, Dropout and Flatten layers")

    # -- buffers --------------------------------------------------------------------------
    def _buffer(self, key: str, shape: tuple):
        """A preallocated array for `key` at this `shape` (allocated once per batch size)."""
        k = (key, shape)
        buf = self._buffers.get(k)
        if buf is None:
            if len(self._buffers) > 32:  # many distinct batch sizes (e.g. predict): start afresh
                self._buffers.clear()
            buf = xp().empty(shape, dtype=self.dtype)
            self._buffers[k] = buf
        return buf

    def release_buffers(self) -> None:
        self._buffers.clear()

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"
