"""Losses as value + gradient pairs.

**The batch-mean convention, stated once.** For a batch of B examples the loss is

    L = (1 / denom) * sum_i l_i,     denom = B by default,

where l_i is the loss of example i; for `mse`, `mae` and `binary_crossentropy` l_i is the
mean over the output units (as Keras). Every gradient here is dL/d(prediction) of that mean.
In data-parallel training each rank passes ``denom = global batch size``, so that the
Allreduce SUM of the rank gradients is exactly the gradient of the global batch mean.

**Fused pairs.** When the model's output activation is softmax (with categorical or sparse
categorical cross-entropy) or sigmoid (with binary cross-entropy), the model calls
``value_and_grad_from_logits`` instead: the loss is computed from the logits z with
log-sum-exp / softplus (no overflow, no log(0)) and the gradient w.r.t. z is the familiar
``(p - y) / denom`` (divided by the number of outputs for binary cross-entropy), so the
activation's own backward is skipped.

Unfused cross-entropies clip probabilities to [1e-7, 1 - 1e-7], as Keras does.

**from_logits=True** (Keras's option on the three cross-entropies): the model ends in a linear
layer and the loss takes its outputs as logits, through the same from-logits formulas.

**Second order** (for `gradfit.curvature`), beside each value + gradient pair, with H the
Hessian of the batch-mean loss L w.r.t. the predictions (or logits) of each example:

* ``hessian_vector(y_pred, y_true, r, denom)`` -> H r, row by row (B, d): the loss's part of
  an exact Hessian-vector product (Pearlmutter's R{dL/dy_pred} = H R{y_pred}).
* ``hessian_factor(y_pred, y_true, denom)`` -> S (B, d, d) with S_i^T S_i = H_i: the middle
  of the generalized Gauss-Newton matrix sum_i J_i^T H_i J_i = sum_i (S_i J_i)^T (S_i J_i)
  (Schraudolph 2002), which needs H_i positive semi-definite.  mse: H = 2 I / (d denom), so
  this is the Gauss-Newton matrix J^T J scaled; cross-entropy from logits: the softmax
  (sigmoid) cross-entropy Hessian diag(p) - p p^T (p (1 - p)).  mae (H = 0) and unfused
  categorical cross-entropy (H indefinite in the probabilities) have no factor: they raise.

The ``_from_logits`` forms take the logits z and the probabilities, as ``value_and_grad_from_logits``.
"""
from __future__ import annotations

import numpy as np

from .backend import xp
from .checks import check_choice
from .layers.activations import get as activation

EPSILON = 1e-7


class Loss:
    name = "loss"
    #: the output activation this loss fuses with, if any
    fuses_with = None
    sparse = False
    from_logits = False

    def __call__(self, y_true, y_pred):
        """Batch-mean loss, Keras argument order (y_true, y_pred)."""
        y_pred = xp().asarray(y_pred)
        y_true = xp().asarray(y_true)
        return float(self.per_example(y_pred, y_true).mean())

    def per_example(self, y_pred, y_true):
        raise NotImplementedError

    def value_and_grad(self, y_pred, y_true, out, denom=None):
        """(sum_i l_i / denom, dL/dy_pred written into `out`)."""
        raise NotImplementedError

    def hessian_vector(self, y_pred, y_true, r, denom=None):
        """H r (B, d): H the Hessian of L w.r.t. each example's prediction (module docstring)."""
        raise NotImplementedError

    def hessian_factor(self, y_pred, y_true, denom=None):
        """S (B, d, d) with S_i^T S_i = H_i, for the Gauss-Newton matrix (module docstring)."""
        raise NotImplementedError

    def check_targets(self, y, output_dim):
        """Validate targets against the model output width; return them in the expected form."""
        y = np.asarray(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != output_dim:
            raise ValueError(
                f"targets of shape {y.shape} do not match the model output width {output_dim} "
                f"for loss '{self.name}'; expected shape (n, {output_dim})"
            )
        return y

    def get_config(self):
        if self.from_logits:
            return {"name": self.name, "from_logits": True}
        return self.name


class _CrossEntropy(Loss):
    """``from_logits=True`` (Keras): the model's outputs are logits (a linear last layer);
    the loss applies ``fuses_with`` (softmax or sigmoid) itself, through the same stable
    from-logits formulas as the fused pair."""

    def __init__(self, from_logits=False):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ValueError(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)
        if self.from_logits:
            self.fuses_with = None  # the outputs are already logits: nothing to fuse

    def _probs(self, z):
        kind = type(self).fuses_with
        return activation(kind).forward(z, xp().empty_like(z))

    def _value_and_grad_of_logits(self, z, y_true, out, denom):
        return self.value_and_grad_from_logits(z, y_true, out, denom, probs=self._probs(z))

    def hessian_vector(self, y_pred, y_true, r, denom=None):
        if self.from_logits:
            return self.hessian_vector_from_logits(y_pred, y_true, r, denom, self._probs(y_pred))
        return self._hessian_vector_of_probs(y_pred, y_true, r, denom)

    def hessian_factor(self, y_pred, y_true, denom=None):
        if self.from_logits:
            return self.hessian_factor_from_logits(y_pred, y_true, denom, self._probs(y_pred))
        return self._hessian_factor_of_probs(y_pred, y_true, denom)


def _denom(y, denom):
    return y.shape[0] if denom is None else denom


class MeanSquaredError(Loss):
    """l_i = mean_j (yhat_ij - y_ij)^2;  dL/dyhat = 2 (yhat - y) / (d * denom)."""
    name = "mse"

    def per_example(self, y_pred, y_true):
        return ((y_pred - y_true) ** 2).mean(axis=1)

    def value_and_grad(self, y_pred, y_true, out, denom=None):
        x = xp()
        n, d = y_pred.shape
        x.subtract(y_pred, y_true, out=out)
        value = float(x.vdot(out, out)) / (d * _denom(y_pred, denom))
        out *= 2.0 / (d * _denom(y_pred, denom))
        return value, out

    def hessian_vector(self, y_pred, y_true, r, denom=None):
        """H = 2 I / (d denom)."""
        return r * (2.0 / (y_pred.shape[1] * _denom(y_pred, denom)))

    def hessian_factor(self, y_pred, y_true, denom=None):
        """S = sqrt(2 / (d denom)) I."""
        n, d = y_pred.shape
        scale = (2.0 / (d * _denom(y_pred, denom))) ** 0.5
        return xp().broadcast_to(scale * xp().eye(d, dtype=y_pred.dtype), (n, d, d))


class MeanAbsoluteError(Loss):
    """l_i = mean_j |yhat_ij - y_ij|;  dL/dyhat = sign(yhat - y) / (d * denom)."""
    name = "mae"

    def per_example(self, y_pred, y_true):
        return xp().abs(y_pred - y_true).mean(axis=1)

    def value_and_grad(self, y_pred, y_true, out, denom=None):
        x = xp()
        n, d = y_pred.shape
        x.subtract(y_pred, y_true, out=out)
        value = float(x.abs(out).sum()) / (d * _denom(y_pred, denom))
        x.sign(out, out=out)
        out *= 1.0 / (d * _denom(y_pred, denom))
        return value, out

    def hessian_vector(self, y_pred, y_true, r, denom=None):
        """H = 0 away from yhat = y (where |.| has no second derivative)."""
        return xp().zeros_like(r)

    def hessian_factor(self, y_pred, y_true, denom=None):
        raise ValueError("loss 'mae' has zero curvature (its second derivative is 0 almost "
                         "everywhere): Gauss-Newton and Levenberg-Marquardt have nothing to work "
                         "with; use loss='mse', or a first-order optimizer such as 'adam'")


class BinaryCrossentropy(_CrossEntropy):
    """l_i = mean_j -[y log p + (1 - y) log(1 - p)], targets in [0, 1].

    From logits z (fused with sigmoid): l = max(z, 0) - z y + log(1 + exp(-|z|)),
    dL/dz = (sigmoid(z) - y) / (d * denom).
    """
    name = "binary_crossentropy"
    fuses_with = "sigmoid"

    def check_targets(self, y, output_dim):
        y = super().check_targets(y, output_dim)
        if y.size and (np.nanmin(y) < 0 or np.nanmax(y) > 1):
            raise ValueError(
                f"binary_crossentropy needs targets in [0, 1], got values in "
                f"[{np.nanmin(y)}, {np.nanmax(y)}]"
            )
        return y

    def per_example(self, y_pred, y_true):
        x = xp()
        if self.from_logits:
            z = y_pred
            return (x.maximum(z, 0) - z * y_true + x.log1p(x.exp(-x.abs(z)))).mean(axis=1)
        p = x.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(y_true * x.log(p) + (1 - y_true) * x.log(1 - p)).mean(axis=1)

    def value_and_grad(self, y_pred, y_true, out, denom=None):
        if self.from_logits:
            return self._value_and_grad_of_logits(y_pred, y_true, out, denom)
        x = xp()
        d = y_pred.shape[1]
        p = x.clip(y_pred, EPSILON, 1 - EPSILON)
        value = float(-(y_true * x.log(p) + (1 - y_true) * x.log(1 - p)).sum()) / (d * _denom(y_pred, denom))
        # d/dp of the clipped loss; zero where the clip is active, as in Keras.
        g = (p - y_true) / (p * (1 - p))
        g *= (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        x.multiply(g, 1.0 / (d * _denom(y_pred, denom)), out=out)
        return value, out

    def _hessian_diag_of_probs(self, y_pred, y_true, denom):
        # d/dp of (p - y) / (p (1 - p)) = y / p^2 + (1 - y) / (1 - p)^2, zero where clipped
        p = xp().clip(y_pred, EPSILON, 1 - EPSILON)
        h = y_true / (p * p) + (1 - y_true) / ((1 - p) * (1 - p))
        h *= (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return h / (y_pred.shape[1] * _denom(y_pred, denom))

    def _hessian_vector_of_probs(self, y_pred, y_true, r, denom):
        """H = diag(y / p^2 + (1 - y) / (1 - p)^2) / (d denom), 0 where p is clipped."""
        return self._hessian_diag_of_probs(y_pred, y_true, denom) * r

    def _hessian_factor_of_probs(self, y_pred, y_true, denom):
        return _diagonal_factor(self._hessian_diag_of_probs(y_pred, y_true, denom))

    def hessian_vector_from_logits(self, z, y_true, r, denom=None, probs=None):
        """H = diag(p (1 - p)) / (d denom), p = sigmoid(z)."""
        return probs * (1 - probs) * r / (z.shape[1] * _denom(z, denom))

    def hessian_factor_from_logits(self, z, y_true, denom=None, probs=None):
        return _diagonal_factor(probs * (1 - probs) / (z.shape[1] * _denom(z, denom)))

    def value_and_grad_from_logits(self, z, y_true, out, denom=None, probs=None):
        x = xp()
        d = z.shape[1]
        per = x.maximum(z, 0) - z * y_true + x.log1p(x.exp(-x.abs(z)))
        value = float(per.sum()) / (d * _denom(z, denom))
        x.subtract(probs, y_true, out=out)
        out *= 1.0 / (d * _denom(z, denom))
        return value, out


class CategoricalCrossentropy(_CrossEntropy):
    """l_i = -sum_j y_ij log p_ij, one-hot (or soft) targets of shape (n, classes).

    Unfused, p is renormalised to sum 1 and clipped (Keras). From logits z (fused with
    softmax): l_i = logsumexp(z_i) * sum_j y_ij - sum_j y_ij z_ij,
    dL/dz = (softmax(z) * sum_j y_ij - y) / denom.
    """
    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def check_targets(self, y, output_dim):
        y = super().check_targets(y, output_dim)
        if output_dim < 2:
            raise ValueError("categorical_crossentropy needs at least 2 output units; "
                             "use binary_crossentropy with one sigmoid output")
        if y.size and np.nanmin(y) < 0:
            raise ValueError(f"categorical_crossentropy needs non-negative targets, got minimum {np.nanmin(y)}")
        return y

    def per_example(self, y_pred, y_true):
        x = xp()
        if self.from_logits:
            m = y_pred.max(axis=1, keepdims=True)
            lse = m + x.log(x.exp(y_pred - m).sum(axis=1, keepdims=True))
            return (y_true * (lse - y_pred)).sum(axis=1)
        p = y_pred / y_pred.sum(axis=1, keepdims=True)
        p = x.clip(p, EPSILON, 1 - EPSILON)
        return -(y_true * x.log(p)).sum(axis=1)

    def value_and_grad(self, y_pred, y_true, out, denom=None):
        if self.from_logits:
            return self._value_and_grad_of_logits(y_pred, y_true, out, denom)
        x = xp()
        s = y_pred.sum(axis=1, keepdims=True)
        q = y_pred / s
        p = x.clip(q, EPSILON, 1 - EPSILON)
        value = float(-(y_true * x.log(p)).sum()) / _denom(y_pred, denom)
        # l = -sum_j y_j log(clip(q_j)),  q = yhat / sum(yhat)
        gq = -y_true / p * ((q > EPSILON) & (q < 1 - EPSILON))
        # dq_j/dyhat_k = (delta_jk - q_j) / s
        g = (gq - (gq * q).sum(axis=1, keepdims=True)) / s
        x.multiply(g, 1.0 / _denom(y_pred, denom), out=out)
        return value, out

    def value_and_grad_from_logits(self, z, y_true, out, denom=None, probs=None):
        x = xp()
        m = z.max(axis=1, keepdims=True)
        lse = m + x.log(x.exp(z - m).sum(axis=1, keepdims=True))
        ysum = y_true.sum(axis=1, keepdims=True)
        value = float((lse * ysum).sum() - (y_true * z).sum()) / _denom(z, denom)
        x.multiply(probs, ysum, out=out)
        out -= y_true
        out *= 1.0 / _denom(z, denom)
        return value, out

    def _hessian_vector_of_probs(self, y_pred, y_true, r, denom):
        """With q = yhat / s, s = sum yhat, m = [eps < q < 1 - eps] and Y = sum_j y_j m_j,
        l = -sum_j m_j y_j (log yhat_j - log s) + const, so
        H r = (y m r / yhat^2 - Y sum(r) / s^2) / denom."""
        s = y_pred.sum(axis=1, keepdims=True)
        q = y_pred / s
        ym = y_true * ((q > EPSILON) & (q < 1 - EPSILON))
        hr = ym * r / (y_pred * y_pred) - ym.sum(axis=1, keepdims=True) * r.sum(axis=1, keepdims=True) / (s * s)
        return hr / _denom(y_pred, denom)

    def _hessian_factor_of_probs(self, y_pred, y_true, denom):
        raise ValueError(
            f"loss '{self.name}' on probabilities (not fused with a softmax output, "
            "from_logits=False) has an indefinite Hessian in the outputs, so it has no "
            "Gauss-Newton form: end the model in Dense(..., activation='softmax') (the fused "
            "pair) or use from_logits=True on a linear last layer")

    def hessian_vector_from_logits(self, z, y_true, r, denom=None, probs=None):
        """H = Y (diag(p) - p p^T) / denom, p = softmax(z), Y = sum_j y_j."""
        ysum = y_true.sum(axis=1, keepdims=True)
        pr = (probs * r).sum(axis=1, keepdims=True)
        return ysum * probs * (r - pr) / _denom(z, denom)

    def hessian_factor_from_logits(self, z, y_true, denom=None, probs=None):
        """S = sqrt(Y / denom) (diag(sqrt p) - sqrt(p) p^T): S^T S = Y (diag(p) - p p^T) / denom
        because sum_j p_j = 1."""
        ysum = y_true.sum(axis=1, keepdims=True)
        return _softmax_factor(probs, ysum / _denom(z, denom))


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels y_i in {0, ..., classes - 1}."""
    name = "sparse_categorical_crossentropy"
    sparse = True

    def check_targets(self, y, output_dim):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"sparse_categorical_crossentropy needs integer labels of shape (n,), got {y.shape}; "
                "for one-hot targets use categorical_crossentropy"
            )
        if y.size:
            if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.round(y))):
                raise ValueError("sparse_categorical_crossentropy needs integer labels; got non-integer values")
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= output_dim:
                raise ValueError(
                    f"labels out of range: found labels in [{lo}, {hi}] but the model has {output_dim} "
                    f"output units, so labels must lie in [0, {output_dim - 1}]"
                )
        return y.astype(np.int64)

    def _onehot(self, y_true, n, d, dtype):
        x = xp()
        oh = x.zeros((n, d), dtype=dtype)
        oh[x.arange(n), y_true] = 1
        return oh

    def per_example(self, y_pred, y_true):
        return super().per_example(y_pred, self._onehot(y_true, *y_pred.shape, y_pred.dtype))

    def value_and_grad(self, y_pred, y_true, out, denom=None):
        if self.from_logits:
            return self._value_and_grad_of_logits(y_pred, y_true, out, denom)
        return super().value_and_grad(y_pred, self._onehot(y_true, *y_pred.shape, y_pred.dtype), out, denom)

    def value_and_grad_from_logits(self, z, y_true, out, denom=None, probs=None):
        x = xp()
        n = z.shape[0]
        rows = x.arange(n)
        m = z.max(axis=1, keepdims=True)
        lse = m[:, 0] + x.log(x.exp(z - m).sum(axis=1))
        value = float((lse - z[rows, y_true]).sum()) / _denom(z, denom)
        out[...] = probs
        out[rows, y_true] -= 1
        out *= 1.0 / _denom(z, denom)
        return value, out

    def _hessian_vector_of_probs(self, y_pred, y_true, r, denom):
        return super()._hessian_vector_of_probs(
            y_pred, self._onehot(y_true, *y_pred.shape, y_pred.dtype), r, denom)

    def hessian_vector_from_logits(self, z, y_true, r, denom=None, probs=None):
        """H = diag(p) - p p^T (over denom): one label per example, Y = 1."""
        pr = (probs * r).sum(axis=1, keepdims=True)
        return probs * (r - pr) / _denom(z, denom)

    def hessian_factor_from_logits(self, z, y_true, denom=None, probs=None):
        return _softmax_factor(probs, xp().full((z.shape[0], 1), 1.0 / _denom(z, denom),
                                                dtype=z.dtype))


def _diagonal_factor(h):
    """(B, d) diagonal Hessians h >= 0 -> (B, d, d) factors diag(sqrt(h))."""
    n, d = h.shape
    S = xp().zeros((n, d, d), dtype=h.dtype)
    idx = xp().arange(d)
    S[:, idx, idx] = xp().sqrt(h)
    return S


def _softmax_factor(p, scale):
    """S_i = sqrt(scale_i) (diag(sqrt p_i) - sqrt(p_i) p_i^T), (B, d, d), scale of shape (B, 1)."""
    x = xp()
    sp = x.sqrt(p)
    S = -sp[:, :, None] * p[:, None, :]
    idx = x.arange(p.shape[1])
    S[:, idx, idx] += sp
    return S * x.sqrt(scale)[:, :, None]


LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier) -> Loss:
    """The loss called `identifier`: a name from LOSSES, a Loss instance, or the
    ``{"name": ..., "from_logits": True}`` form that ``get_config`` writes."""
    if isinstance(identifier, Loss):
        return identifier
    kwargs = {}
    if isinstance(identifier, dict):
        identifier, kwargs = identifier.get("name"), {k: v for k, v in identifier.items()
                                                      if k != "name"}
    check_choice("loss", identifier, LOSSES)
    return LOSSES[identifier](**kwargs)
