"""``keras.optimizers.schedules``'s names (see ``gradfit.optim.schedules`` for the maths)."""
from ..optim.schedules import (Constant, CosineDecay, ExponentialDecay, InverseTimeDecay, Schedule,
                               StepDecay)

LearningRateSchedule = Schedule  # Keras's name for the base class

__all__ = ["Constant", "CosineDecay", "ExponentialDecay", "InverseTimeDecay",
           "LearningRateSchedule", "Schedule", "StepDecay"]
