"""Callbacks with Keras 3's hook protocol, one file each, plus resumable state."""
from gradfit.callbacks.adaptive_batch_size import AdaptiveBatchSize
from gradfit.callbacks.backup_and_restore import BackupAndRestore
from gradfit.callbacks.base import Callback, MonitorCallback
from gradfit.callbacks.callback_list import CallbackList
from gradfit.callbacks.csv_logger import CSVLogger
from gradfit.callbacks.early_stopping import EarlyStopping
from gradfit.callbacks.gradient_noise_scale import GradientNoiseScale
from gradfit.callbacks.history import History
from gradfit.callbacks.learning_rate_scheduler import LearningRateScheduler
from gradfit.callbacks.model_checkpoint import ModelCheckpoint
from gradfit.callbacks.progbar import ProgbarLogger
from gradfit.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from gradfit.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "AdaptiveBatchSize", "BackupAndRestore", "Callback", "CallbackList", "MonitorCallback", "CSVLogger", "EarlyStopping", "GradientNoiseScale", "History",
    "LearningRateScheduler", "ModelCheckpoint", "ProgbarLogger", "ReduceLROnPlateau",
    "TerminateOnNaN",
]
