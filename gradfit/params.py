"""The flat buffer: every parameter of a model in ONE contiguous 1-D array, every gradient in
a second one, and an offset table that gives each layer reshaped views into both.

    entries:  (layer index, name, start, stop, shape)   in Keras's weight order
    data:     [ W1 | b1 | W2 | b2 | ... ]               one array, float32 or float64
    grad:     [dW1 |db1 |dW2 |db2 | ... ]               one array, same layout

Because the views alias the buffers, an optimizer updates the whole model with a few
vectorized expressions over `data` and `grad`, MPI sums all gradients with one Allreduce,
and a checkpoint is one array. `grad` has two spare trailing elements where the training step
puts the batch loss and a stop request (Ctrl-C, SIGTERM), so that the one Allreduce of a step
also sums the loss and makes every rank agree on stopping after the same step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import xp


@dataclass(frozen=True)
class Entry:
    layer: int
    name: str
    start: int
    stop: int
    shape: tuple


class FlatParams:
    def __init__(self, layers, dtype):
        self.dtype = np.dtype(dtype)
        self.entries: list[Entry] = []
        offset = 0
        for i, layer in enumerate(layers):
            for name, shape in layer.param_shapes():
                size = int(np.prod(shape))
                self.entries.append(Entry(i, name, offset, offset + size, tuple(shape)))
                offset += size
        self.size = offset
        x = xp()
        self.data = x.zeros(self.size, dtype=self.dtype)
        self._grad_ext = x.zeros(self.size + 2, dtype=self.dtype)
        self.grad = self._grad_ext[: self.size]

    @property
    def grad_with_loss(self):
        """The gradient buffer plus its two trailing slots, ``[..., stop request, loss]``
        (for one Allreduce of all three)."""
        return self._grad_ext

    def views(self, layer_index: int):
        """(params, grads): dicts name -> reshaped view for one layer."""
        p, g = {}, {}
        for e in self.entries:
            if e.layer == layer_index:
                p[e.name] = self.data[e.start:e.stop].reshape(e.shape)
                g[e.name] = self.grad[e.start:e.stop].reshape(e.shape)
        return p, g

    @property
    def segments(self) -> list[tuple[int, int]]:
        """(start, stop) of every variable: used by per-variable gradient clipping."""
        return [(e.start, e.stop) for e in self.entries]
