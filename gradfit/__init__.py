"""gradfit: deep networks trained the way the lecture "Deep Networks Learning" teaches it.

numpy (BLAS) engine on ONE flat parameter buffer, hand-written forward/backward, exact
optimizers, a Keras-compatible surface, data-parallel MPI training.  Keras's namespaces
(``layers``, ``losses``, ``models``, ``optimizers``, ``optimizers.schedules``,
``regularizers``, ``callbacks``, ``utils``)
are here too, so that Keras code runs after ``import gradfit as keras``.

    import gradfit
    model = gradfit.Sequential([gradfit.Input(shape=(64,)),
                                gradfit.Dense(128, activation="relu"),
                                gradfit.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
"""
from . import (callbacks, datasets, layers, losses, models, noise_scale, optimizers, regularizers,
               utils)
from .backend import get_backend, set_backend, set_num_threads
from .layers import Activation, Dense, Dropout, Flatten, Input
from .model import Sequential
from .models import load_model
from .saving import CorruptFileError
from .utils import set_random_seed
from .version import __version__


__all__ = [
    "callbacks", "datasets", "layers", "losses", "models", "noise_scale", "optimizers",
    "regularizers",
    "utils",
    "Activation", "CorruptFileError", "Dense", "Dropout", "Flatten", "Input", "Sequential",
    "get_backend", "load_model", "set_backend", "set_num_threads", "set_random_seed",
]
