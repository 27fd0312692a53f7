"""gradfit.optimizers: optimizers over one flat buffer, schedules, and lookup by name.

Keras's namespace too (``import gradfit as keras; keras.optimizers.Adam(1e-3)``).  Each
optimizer is one file holding its maths, its declared hyperparameters and its elementwise
rule; defining the class registers it, so adding one is its file plus its import line below.

``get("adam")``, ``get({"class_name": "Adam", "config": {...}})`` or ``get(Adam())``;
``create("nesterov", learning_rate=0.1)`` (a name with settings); ``serialize(obj)`` /
``deserialize(d)`` for optimizers and schedules alike.

The second-order methods (``second_order/``: "lm", "gauss_newton", "newton", "newton_cg",
"bfgs", "lbfgs") have another update protocol (an objective instead of a gradient) and their
own registry, ``SECOND_ORDER``; ``get``, ``create``, ``lookup``, ``serialize`` and
``deserialize`` know them too, so ``compile(optimizer="lm")`` works.  ``NAMES`` and
``OPTIMIZERS`` list the first-order ones.
"""
from __future__ import annotations

from . import forms, schedules
from .base import CLASSES, NAMES, Optimizer
from .hyper import Declared, Hyper
from .schedules import (Constant, CosineDecay, ExponentialDecay, InverseTimeDecay,
                        LearningRateSchedule, PolynomialDecay, Schedule, StepDecay)
# the registry: one line per optimizer, in the order names are listed
from .sgd import SGD
from .adagrad import Adagrad
from .rmsprop import RMSprop
from .adadelta import Adadelta
from .adam import Adam
from .adamw import AdamW
from .nadam import Nadam
from .lion import Lion
from . import second_order
from .second_order import SecondOrderMethod

OPTIMIZERS = CLASSES   # class name -> class
SECOND_ORDER = second_order.METHODS   # name -> class


def serialize(obj) -> dict:
    """``{"class_name": ..., "config": ...}`` of an optimizer or a schedule (JSON-able)."""
    if isinstance(obj, Schedule):
        return schedules.serialize(obj)
    if isinstance(obj, (Optimizer, SecondOrderMethod)):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    raise TypeError(f"cannot serialize {obj!r}: expected a gradfit optimizer or schedule")


def deserialize(config: dict):
    """Inverse of ``serialize`` (optimizers and schedules)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError(f"expected a dict {{'class_name': ..., 'config': {{...}}}}, got {config!r}")
    name = config["class_name"]
    if name in schedules.SCHEDULES:
        return schedules.deserialize(config)
    if name in second_order.CLASSES:
        return second_order.get(config)
    if name not in CLASSES:
        raise ValueError(f"unknown optimizer class {name!r}: expected one of "
                         f"{', '.join(CLASSES)} or a schedule ({', '.join(schedules.SCHEDULES)})")
    return CLASSES[name].from_config(dict(config.get("config", {})))


def lookup(name: str):
    """``(class, preset arguments)`` of a registered name (case-insensitive) or class name."""
    if isinstance(name, str) and name.lower() in NAMES:
        return NAMES[name.lower()]
    if isinstance(name, str) and name in CLASSES:
        return CLASSES[name], {}
    if isinstance(name, str) and name.lower() in SECOND_ORDER:
        return SECOND_ORDER[name.lower()], {}
    if isinstance(name, str) and name in second_order.CLASSES:
        return second_order.CLASSES[name], {}
    raise ValueError(f"unknown optimizer {name!r}: valid names are "
                     f"{', '.join([*NAMES, *SECOND_ORDER])}")


def create(name: str, **hyperparameters):
    """The optimizer called ``name`` with ``hyperparameters`` over its preset ones:
    ``create("nesterov", learning_rate=0.1)`` is ``SGD(momentum=0.9, nesterov=True,
    learning_rate=0.1)``."""
    cls, preset = lookup(name)
    return cls(**{**preset, **hyperparameters})


def get(identifier):
    """An optimizer (or a second-order method) from a name (case-insensitive), a serialized
    dict, or an instance."""
    if isinstance(identifier, (Optimizer, SecondOrderMethod)):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return create(identifier)
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer: pass a name "
                    f"({', '.join([*NAMES, *SECOND_ORDER])}), a serialized dict or an optimizer "
                    "instance")


__all__ = [
    "Optimizer", "Declared", "Hyper", *CLASSES,
    "Schedule", "LearningRateSchedule", "Constant", "InverseTimeDecay", "ExponentialDecay",
    "StepDecay", "CosineDecay", "PolynomialDecay",
    "get", "create", "lookup", "serialize", "deserialize", "forms", "schedules", "OPTIMIZERS",
    "NAMES", "SECOND_ORDER", "SecondOrderMethod", "second_order",
]
