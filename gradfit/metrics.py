"""Metrics, accumulated exactly over an epoch as (sum over examples, count of examples).

`accuracy` resolves to a variant the way Keras 3 does: binary accuracy (threshold 0.5) for one
output unit or binary cross-entropy, sparse categorical accuracy for integer labels, categorical
accuracy (argmax match) for one-hot targets.
"""
from __future__ import annotations

from .backend import xp
from .checks import check_choice


class Metric:
    name = "metric"

    def batch_sum(self, y_pred, y_true) -> float:
        """Sum over the batch of the per-example metric value."""
        raise NotImplementedError


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def batch_sum(self, y_pred, y_true):
        hit = (y_pred > self.threshold) == (y_true > 0.5)
        return float(hit.mean(axis=1).sum())


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def batch_sum(self, y_pred, y_true):
        return float((y_pred.argmax(axis=1) == y_true.argmax(axis=1)).sum())


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def batch_sum(self, y_pred, y_true):
        return float((y_pred.argmax(axis=1) == y_true.reshape(-1)).sum())


class MeanSquaredError(Metric):
    name = "mse"

    def batch_sum(self, y_pred, y_true):
        return float(((y_pred - y_true) ** 2).mean(axis=1).sum())


class MeanAbsoluteError(Metric):
    name = "mae"

    def batch_sum(self, y_pred, y_true):
        return float(xp().abs(y_pred - y_true).mean(axis=1).sum())


METRICS = {
    "accuracy": None, "acc": None,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier, loss, output_dim: int) -> tuple[str, Metric]:
    """(log name, metric) for `identifier`; 'accuracy' is resolved against the loss and output."""
    if isinstance(identifier, Metric):
        return identifier.name, identifier
    check_choice("metric", identifier, METRICS)
    if identifier in ("accuracy", "acc"):
        if loss.name == "binary_crossentropy" or output_dim == 1:
            metric = BinaryAccuracy()
        elif loss.sparse:
            metric = SparseCategoricalAccuracy()
        else:
            metric = CategoricalAccuracy()
        return identifier, metric
    metric = METRICS[identifier]()
    return identifier, metric
