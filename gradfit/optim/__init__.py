"""gradfit.optim: optimizers over one flat buffer, schedules, and lookup by name.

``get("adam")``, ``get({"class_name": "Adam", "config": {...}})`` or ``get(Adam())``;
``serialize(obj)`` / ``deserialize(d)`` for optimizers and schedules alike.
"""
from __future__ import annotations

from . import forms, schedules, transforms
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedules import (Constant, CosineDecay, ExponentialDecay, InverseTimeDecay, Schedule,
                        StepDecay)

OPTIMIZERS = {c.__name__: c for c in (SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW)}

# lower-case names accepted by get() (and compile(optimizer=...)); value: (class, kwargs)
NAMES = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (Adagrad, {}),
    "rmsprop": (RMSprop, {}),
    "adadelta": (Adadelta, {}),
    "adam": (Adam, {}),
    "amsgrad": (Adam, {"amsgrad": True}),
    "adamw": (AdamW, {}),
}


def serialize(obj) -> dict:
    """``{"class_name": ..., "config": ...}`` of an optimizer or a schedule (JSON-able)."""
    if isinstance(obj, Schedule):
        return schedules.serialize(obj)
    if isinstance(obj, Optimizer):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    raise TypeError(f"cannot serialize {obj!r}: expected a gradfit optimizer or schedule")


def deserialize(config: dict):
    """Inverse of ``serialize`` (optimizers and schedules)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError(f"expected a dict {{'class_name': ..., 'config': {{...}}}}, got {config!r}")
    name = config["class_name"]
    if name in schedules.SCHEDULES:
        return schedules.deserialize(config)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer class {name!r}: expected one of "
                         f"{', '.join(OPTIMIZERS)} or a schedule ({', '.join(schedules.SCHEDULES)})")
    return OPTIMIZERS[name].from_config(dict(config.get("config", {})))


def get(identifier) -> Optimizer:
    """An optimizer from a name (case-insensitive), a serialized dict, or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in NAMES:
            cls, kwargs = NAMES[key]
            return cls(**kwargs)
        if identifier in OPTIMIZERS:
            return OPTIMIZERS[identifier]()
        raise ValueError(f"unknown optimizer {identifier!r}: valid names are {', '.join(NAMES)}")
    raise TypeError(f"cannot interpret {identifier!r} as an optimizer: pass a name "
                    f"({', '.join(NAMES)}), a serialized dict or an optimizer instance")


__all__ = [
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW",
    "Schedule", "Constant", "InverseTimeDecay", "ExponentialDecay", "StepDecay", "CosineDecay",
    "get", "serialize", "deserialize", "forms", "schedules", "transforms", "OPTIMIZERS", "NAMES",
]
