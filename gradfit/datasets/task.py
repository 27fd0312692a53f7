"""What a data set asks to learn: classification with K classes, or regression.

``decide_task(y_train, y_test)`` looks at the targets once, and anything ambiguous is an
error that says which rows are odd and which setting decides (`ArgumentError`, so the command
line names its flags ``--task`` / ``--num-classes``):

* 1-D targets that are all whole numbers >= 0 are class labels 0..K-1, K = max + 1, unless
  a class in 0..K-1 is missing (labels 1..10: 1-based?) or holds at most 2 rows while the
  others hold many (a stray label 10 among digits 0..9): then ``num_classes`` must be given;
* 1-D targets that are mostly class labels (>= 90% whole numbers >= 0, at most 50 values) but
  with a few negative or fractional values (-1, 0.5) are an error naming those rows, not a
  silent switch to regression: fix them, or ask for ``task="regression"``;
* other 1-D targets are regression (one output, mse);
* 2-D targets: one-hot rows are classification (K = width), anything else multi-output
  regression.

The test targets must fit the same task (labels within 0..K-1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import ArgumentError, check_choice, check_int

TASKS = ("auto", "classification", "regression")
#: a class this small next to the typical class (the median) is taken for a stray label
RARE_ROWS = 2


@dataclass(frozen=True)
class Task:
    """``kind`` "classification" or "regression"; ``num_classes`` (None for regression);
    ``out_dim`` the network's output width; ``loss`` and ``metrics`` as compile takes them."""

    kind: str
    num_classes: int | None
    out_dim: int
    loss: str
    metrics: tuple
    how: str      # how it was decided, for the first lines of a run

    def describe(self) -> str:
        if self.kind == "classification":
            return (f"classification, {self.num_classes} classes (labels 0..{self.num_classes - 1}), "
                    f"softmax output, loss {self.loss} ({self.how})")
        return f"regression, {self.out_dim} output(s), loss {self.loss} ({self.how})"


def decide_task(y_train, y_test=None, task: str = "auto", num_classes: int | None = None,
                source_rows=None, source=None) -> Task:
    """The task of targets ``y_train`` (and ``y_test``); see the module docstring.

    ``source_rows`` (train rows, test rows) and ``source`` name odd rows as rows of the file
    the two parts were split from (a `Dataset`'s fields of those names)."""
    where = _Where(source_rows, source)
    check_choice("task", task, TASKS)
    if num_classes is not None:
        check_int("num_classes", num_classes, 2)
        if task == "regression":
            raise ArgumentError("num_classes", num_classes, "unset for a regression task",
                                "drop {num_classes}, or use {task} classification")
    y_train = np.asarray(y_train)
    if y_train.ndim == 2:
        return _two_dimensional(y_train, task, num_classes)
    if y_train.ndim != 1:
        raise ArgumentError("y", f"shape {y_train.shape}", "1-D labels or 2-D targets")
    if task == "regression":
        return _regression(1, "as asked")
    labels = _is_label(y_train)
    if not labels.all():
        share, distinct = labels.mean(), len(np.unique(y_train[labels]))
        if task == "classification" or (share >= 0.9 and distinct <= 50):
            rows = np.flatnonzero(~labels)
            raise ArgumentError(
                "task", task,
                "a task the targets fit: " + _rows(y_train, rows, where) + " are not class labels "
                f"(whole numbers >= 0) but the other {len(y_train) - len(rows)} are",
                "fix those rows, or use {task} regression to fit the targets as numbers")
        return _regression(1, "targets are not all whole numbers >= 0")
    k, how = _classes(y_train, num_classes, where)
    if y_test is not None and len(y_test):
        _check_test_labels(np.asarray(y_test), k, where)
    return Task("classification", k, k, "sparse_categorical_crossentropy", ("accuracy",), how)


def _is_label(y):
    return (y >= 0) & (y == np.round(y))


class _Where:
    """Names a row of the train (part 0) or test (part 1) targets as a row of their source."""

    def __init__(self, source_rows=None, source=None):
        self.source_rows, self.source = source_rows, source

    def __call__(self, r, part) -> str:
        if self.source_rows is None:
            return f"{('train', 'test')[part]} row {int(r)}"
        return f"row {int(self.source_rows[part][r])} of {self.source}"


def _rows(y, rows, where, part=0, most=3) -> str:
    shown = ", ".join(f"{where(r, part)}: {y[r].item():g}" for r in rows[:most])
    more = f" and {len(rows) - most} more" if len(rows) > most else ""
    return f"{len(rows)} target(s) ({shown}{more})"


def _classes(y, num_classes, where):
    """(K, how it was decided) for labels y that are all whole numbers >= 0."""
    top = int(y.max())
    if num_classes is not None:
        if top >= num_classes:
            rows = np.flatnonzero(y >= num_classes)
            raise ArgumentError("num_classes", num_classes,
                                f"more than the largest label {top}",
                                f"{_rows(y, rows, where)} are >= {num_classes}: fix them, or use "
                                f"{{num_classes}} {top + 1}")
        return num_classes, "as asked"
    counts = _bincount(y, top + 1)
    if top < 1:
        raise ArgumentError("y", f"labels all {top}", "at least two classes",
                            "check the label column ({label_column}) or the data")
    typical = float(np.median(counts[counts > 0]))
    missing = np.flatnonzero(counts == 0)
    rare = np.flatnonzero((counts > 0) & (counts <= RARE_ROWS) & (typical > 10 * RARE_ROWS))
    if len(missing):
        hint = " (1-based labels? subtract 1)" if missing.tolist() == [0] else ""
        raise ArgumentError("num_classes", None, "given when a class has no row",
                            f"labels run 0..{top} but class(es) {missing.tolist()[:5]} never "
                            f"occur{hint}: fix the labels, or use {{num_classes}} {top + 1}")
    if len(rare):
        rows = np.flatnonzero(np.isin(y, rare))
        raise ArgumentError("num_classes", None, "given when a class is this rare",
                            f"label(s) {rare.tolist()[:5]} occur in only {_rows(y, rows, where)} while "
                            f"the other classes have about {typical:.0f} rows each: a stray "
                            f"label? Fix those rows, or use {{num_classes}} {top + 1} to keep "
                            "them as classes")
    return top + 1, f"labels 0..{top} in the training data"


def _bincount(y, length: int, chunk: int = 1 << 20) -> np.ndarray:
    """``np.bincount`` of whole-number labels, a chunk at a time: the labels of a large set
    read from disk stay in their stored dtype (1 byte a row for uint8), never all as int64."""
    counts = np.zeros(length, dtype=np.int64)
    for lo in range(0, len(y), chunk):
        counts += np.bincount(y[lo:lo + chunk].astype(np.int64), minlength=length)
    return counts


def _check_test_labels(y_test, k, where):
    if y_test.ndim != 1:
        return
    odd = np.flatnonzero(~_is_label(y_test))
    if len(odd):
        raise ArgumentError("task", "classification", "a task the test targets fit too",
                            f"the test set has {_rows(y_test, odd, where, part=1)} that are not class "
                            "labels (whole numbers >= 0): fix them, or use {task} regression")
    big = np.flatnonzero(y_test >= k)
    if len(big):
        raise ArgumentError("num_classes", k, "large enough for the test labels too",
                            f"the test set has {_rows(y_test, big, where, part=1)} outside 0..{k - 1}: "
                            "fix them, or give {num_classes}")


def _two_dimensional(y, task, num_classes):
    one_hot = y.size and np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
    if task == "classification" or (task == "auto" and one_hot):
        if not one_hot:
            raise ArgumentError("task", task, "regression for 2-D targets that are not one-hot",
                                "use {task} regression, or give labels as one column")
        if num_classes is not None and num_classes != y.shape[1]:
            raise ArgumentError("num_classes", num_classes,
                                f"the one-hot width {y.shape[1]}", "drop {num_classes}")
        return Task("classification", y.shape[1], y.shape[1], "categorical_crossentropy",
                    ("accuracy",), f"one-hot targets of width {y.shape[1]}")
    return _regression(y.shape[1], "2-D targets that are not one-hot")


def _regression(out_dim, how):
    return Task("regression", None, out_dim, "mse", ("mae",), how)
