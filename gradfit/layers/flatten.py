"""``Flatten``: examples of any shape become vectors, as ``keras.layers.Flatten``."""
from __future__ import annotations

import math

from .base import Layer


def check_shape(name, shape) -> tuple:
    """A per-example shape: a non-empty tuple of positive ints."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{name} must be a tuple like (28, 28), got {shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{name} must be a non-empty tuple of positive sizes, got {shape!r}")
    return shape


class Flatten(Layer):
    """``Flatten(input_shape=None)``: each example of shape ``input_shape`` becomes a vector of
    ``prod(input_shape)`` values, in C order (Keras's ``channels_last`` order).

    Dense networks compute on ``(batch, width)`` arrays, so the model flattens its inputs once
    where they enter (``Sequential.check_inputs``: a reshape, no copy for C-ordered data) and
    this layer is an identity on the flat arrays: it declares the example shape, as the first
    layer (``Flatten(input_shape=(28, 28))``, or after ``Input(shape=(28, 28))``, or with the
    shape taken from the first batch).  Anywhere later it is an identity too, as Keras's
    Flatten is on a 2-D tensor.
    """

    def __init__(self, input_shape=None, name=None):
        super().__init__(name)
        self.declared_input_shape = None if input_shape is None else check_shape("input_shape",
                                                                                input_shape)

    @property
    def declared_input_dim(self):
        return None if self.declared_input_shape is None else math.prod(self.declared_input_shape)

    def forward(self, x, training=False):
        return x

    def backward(self, dy, skip_activation=False):
        return dy

    def r_forward(self, rx, v, skip_activation=False):
        return rx

    def r_backward(self, dy, rdy, v, grads, hv, skip_activation=False):
        return dy, rdy

    def get_config(self):
        return {"name": self.name,
                "input_shape": None if self.declared_input_shape is None
                else list(self.declared_input_shape)}
