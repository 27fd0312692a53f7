"""`Input(shape=(n,))`: declares the input width as the first element of a Sequential."""
from __future__ import annotations

from .dense import _input_dim


class Input:
    """Placeholder for the model input, as ``keras.Input(shape=(100,))``. Holds no parameters."""

    def __init__(self, shape, name=None):
        self.shape = (_input_dim(shape, None),)
        self.name = name or "input"

    def __repr__(self):
        return f"Input(shape={self.shape})"
