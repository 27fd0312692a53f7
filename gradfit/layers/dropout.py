"""Inverted dropout."""
from __future__ import annotations

from ..backend import xp
from ..utils import rng
from .base import Layer


class Dropout(Layer):
    """``Dropout(rate)``: in training, zero each unit with probability `rate` and scale the
    survivors by 1/(1 - rate) (inverted dropout), so inference is the identity.

    Forward (training): y = x * m / (1 - rate), m ~ Bernoulli(1 - rate), shape (B, n).
    Backward: dx = dy * m / (1 - rate).
    The mask is drawn from gradfit's seeded generator on the host, so runs are reproducible
    and resumable on either backend. Keras's per-layer `seed` is not supported: seed the whole
    run with `gradfit.set_random_seed` (a per-layer generator would escape checkpoints and MPI).
    """

    def __init__(self, rate, seed=None, name=None):
        super().__init__(name)
        if seed is not None:
            raise ValueError(f"Dropout(seed={seed!r}) is not supported: gradfit draws every mask from "
                             "one generator so that checkpoints and MPI ranks stay exact; call "
                             "gradfit.set_random_seed(seed) instead")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.shard = None   # (row offset, global batch size) in data-parallel training

    def forward(self, x, training=False):
        self._active = training and self.rate > 0
        if not self._active:
            return x
        x_ = xp()
        keep = 1.0 - self.rate
        if self.shard is None or self.shard[1] == x.shape[0]:
            m = rng().random(x.shape, dtype="float32") < keep
        else:   # draw the global batch's mask on every rank and keep this rank's rows
            off, total = self.shard
            m = (rng().random((total, x.shape[1]), dtype="float32") < keep)[off:off + x.shape[0]]
        scale = self._buffer("mask", x.shape)
        scale[...] = x_.asarray(m)
        scale *= 1.0 / keep
        self._mask = scale
        y = self._buffer("y", x.shape)
        return x_.multiply(x, scale, out=y)

    def backward(self, dy, skip_activation=False):
        if not self._active:
            return dy
        return xp().multiply(dy, self._mask, out=dy)

    def r_forward(self, rx, v, skip_activation=False):
        """R{y} = R{x} * m / (1 - rate): the mask of the last forward is held fixed (inference
        mode: the identity)."""
        if not self._active or rx is None:
            return rx
        return rx * self._mask

    def r_backward(self, dy, rdy, v, grads, hv, skip_activation=False):
        """(dy * m, R{dy} * m) / (1 - rate) with the same fixed mask (new arrays)."""
        if not self._active:
            return dy, rdy
        return dy * self._mask, rdy * self._mask

    def get_config(self):
        return {"rate": self.rate, "name": self.name}
