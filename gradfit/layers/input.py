"""`Input(shape=...)`: declares the per-example input shape as the first element of a Sequential."""
from __future__ import annotations

from .flatten import check_shape


class Input:
    """Placeholder for the model input, as ``keras.Input(shape=(100,))``. Holds no parameters.

    A shape of more than one axis (``Input(shape=(28, 28))``) must be followed by ``Flatten()``:
    Dense layers take vectors.
    """

    def __init__(self, shape, name=None):
        if isinstance(shape, int):
            shape = (shape,)
        self.shape = check_shape("Input shape", shape)
        self.name = name or "input"

    def __repr__(self):
        return f"Input(shape={self.shape})"
