"""`KillAt`: the callback the resume scripts beside it use to die mid-run, as a crash would."""
import os
import signal

from gradfit.callbacks import Callback


class KillAt(Callback):
    """Sends this process SIGKILL (no Python cleanup, no backup of that step) after its
    ``step``-th training step of this launch, where ``armed`` (e.g. on rank 0 only);
    ``seen`` counts the steps trained in this launch."""

    def __init__(self, step, armed=True):
        super().__init__()
        self.step, self.armed, self.seen = step, armed, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.armed and self.seen == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
