"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019)::

    theta <- theta * (1 - lr wd);   then Adam's step, on the gradient without decay

The same rule as ``torch.optim.AdamW`` and Keras's ``AdamW`` (with ``epsilon_hat=True`` for
Keras's epsilon form: see ``Adam``).  Adam's hyperparameters, with ``weight_decay`` second as
Keras has it and torch's default 0.01 (Keras: 0.004).
"""
from __future__ import annotations

from .adam import Adam
from .hyper import moved


class AdamW(Adam):
    __doc__ = __doc__  # the module docstring above: help(AdamW) shows the maths
    names = {"adamw": {}}
    torch_class = "AdamW"
    decoupled_weight_decay = True
    hyperparameters = moved(Adam.hyperparameters, "weight_decay", after="learning_rate",
                            default=0.01, doc="decoupled weight decay: theta <- theta (1 - lr wd)")
