"""Per-batch conversion and checks, shared by every batch source.

A source never converts its whole data: each batch is read in the stored dtype (a uint8
memmap stays uint8 on disk and in the page cache), then converted here to what the model
computes with, and checked, so a bad value is reported before it reaches a gradient:

* ``x`` becomes a C-contiguous array of the model's dtype (float32 or float64), shape
  ``(b, *row_shape)``; every value must be finite *after* the conversion (a float64 1e39
  overflows float32 to inf and is refused too);
* ``y`` of integer class labels stays ``int64`` (``labels=True``), each in
  ``0 .. num_classes-1`` when ``num_classes`` is known; float targets become the model's
  dtype and must be finite.

Every message names where the bad value came from through ``origin(i)``, a function of the
row's position ``i`` in the batch that the source supplies (``"data row 3120 (shard-00003.npy,
row 120)"``), and the batch itself through ``where`` (``"epoch 2, batch 17"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_int
from .base import DatasetError


@dataclass(frozen=True)
class Conversion:
    """What a batch must become: the model's dtype and, for class labels, their range.

    ``labels``: True (integer class labels, kept int64), False (targets converted to
    ``dtype``) or None (decided by y's dtype: integers are labels). ``num_classes``: labels
    must lie in ``0 .. num_classes-1`` (None: only ``>= 0`` is checked).
    Plain data, so it travels to worker processes with the source.
    """

    dtype: str = "float32"
    num_classes: int | None = None
    labels: bool | None = None

    def __post_init__(self):
        if np.dtype(self.dtype).kind != "f":
            raise ValueError(f"Conversion dtype must be a float dtype, got {self.dtype!r}")
        if self.num_classes is not None:
            check_int("num_classes", self.num_classes, 1, owner="Conversion")

    def x(self, x, origin, where: str, check: bool = True) -> np.ndarray:
        """``x`` as a C-contiguous model-dtype array; DatasetError on a non-numeric or
        non-finite value (``check=False``: values already checked, only converted)."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: x has dtype {x.dtype}; data must be numeric "
                               f"(bool, integer or float)")
        if x.dtype.kind == "f" and x.dtype.itemsize > np.dtype(self.dtype).itemsize:
            with np.errstate(over="ignore"):     # an overflow to inf is reported just below
                out = np.ascontiguousarray(x, dtype=self.dtype)
        else:
            out = np.ascontiguousarray(x, dtype=self.dtype)
        if check and x.dtype.kind == "f":   # integers cannot overflow float32 to inf, nor be NaN
            _check_finite(out, "x", origin, where)
        return out

    def y(self, y, origin, where: str, check: bool = True) -> np.ndarray:
        """``y`` as int64 class labels or model-dtype targets; DatasetError on a bad value
        (``check=False``: values already checked, only converted)."""
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: y has dtype {y.dtype}; targets must be numeric")
        labels = self.labels if self.labels is not None else y.dtype.kind in "biu"
        if not labels:
            with np.errstate(over="ignore"):
                out = np.ascontiguousarray(y, dtype=self.dtype)
            if check:
                _check_finite(out, "y", origin, where)
            return out
        if y.ndim == 2 and y.shape[1] == 1:        # a column of labels, as Keras takes
            y = y[:, 0]
        if not check:
            return y.astype(np.int64)
        if y.ndim != 1:
            raise DatasetError(f"{where}: class labels must be one number per row, got y of "
                               f"shape {y.shape}; one-hot targets take "
                               f"loss='categorical_crossentropy'")
        if y.dtype.kind == "f":
            bad = ~np.isfinite(y) | (y != np.round(y))
            if bad.any():
                i = int(np.argmax(bad))
                raise DatasetError(f"{where}: {origin(i)}: label {y[i].item()!r} is not a whole "
                                   f"number; class labels must be integers 0..num_classes-1")
        out = y.astype(np.int64)
        top = self.num_classes
        if out.size and (out.min() < 0 or (top is not None and out.max() >= top)):
            i = int(np.argmax((out < 0) | (out >= top if top is not None else False)))
            valid = f"0..{top - 1} (the model has {top} outputs)" if top is not None else ">= 0"
            raise DatasetError(f"{where}: {origin(i)}: label {int(out[i])} is out of range; "
                               f"class labels must be {valid}")
        return out


def _check_finite(a: np.ndarray, what: str, origin, where: str) -> None:
    finite = np.isfinite(a)
    if finite.all():
        return
    bad = ~finite.reshape(len(a), -1)
    i = int(np.argmax(bad.any(axis=1)))
    j = int(np.argmax(bad[i]))
    value = a.reshape(len(a), -1)[i, j].item()
    column = f", column {j}" if bad.shape[1] > 1 else ""
    raise DatasetError(f"{where}: {origin(i)}{column}: {what} is {value!r} "
                       f"({int(bad.sum())} NaN or inf value(s) in this batch); clean or impute "
                       f"the data before training")


def batch_row(i: int) -> str:
    """``origin`` for data known only by its batch (a generator, a PyDataset)."""
    return f"row {i} of the batch"
