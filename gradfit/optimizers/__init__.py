"""``keras.optimizers``'s names, for Keras code with one import changed
(``import gradfit as keras``): the optimizers themselves live in ``gradfit.optim``.

    keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    keras.optimizers.Adam(learning_rate=keras.optimizers.schedules.ExponentialDecay(1e-3, 1000, 0.9))
"""
from ..optim import (SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop, deserialize, get,
                     serialize)
from . import schedules

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "deserialize",
           "get", "schedules", "serialize"]
