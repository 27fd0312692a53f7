"""`TrainState`: everything a training run needs to continue exactly, in one object.

The loop (`gradfit.train.loop.fit`) creates nothing else: it reads where it is from the state,
advances it after every step and every epoch, and callbacks see it as ``model.train_state``
(Keras's callbacks read ``model.optimizer.iterations``; here the whole position is explicit).

    state.opt              the optimizer state {"step": int, slot: flat array, ...}; it lives as
                           long as the compiled model, so a second ``fit`` (or ``train_on_batch``)
                           continues with the same moments, as Keras's optimizer variables do
    state.epoch            the epoch in progress (0-based)
    state.step             optimizer steps taken in this epoch
    state.seen             rows of this pass's order consumed so far (global batches); a pass
                           is an epoch unless ``fit`` has ``steps_per_epoch`` (`train.feed`)
    state.position         batches of this pass consumed: a PyDataset's index into the pass's
                           order, a stream's position (batches drawn since it was iterated)
    state.val_position     the validation stream's position (``validation_steps``: it
                           continues from one evaluation to the next, as Keras)
    state.source           the training source's identity (``source.describe()``): a backup
                           resumes only on the same data (`check_same_source`)
    state.batch_size       the global batch size of the next step
    state.lr_factor        the factor on the optimizer's learning rate for the next step (1.0;
                           AdaptiveBatchSize sets it with batch_size); `train_step` passes it
                           to ``optimizer.update(..., lr_scale=)``, so callbacks, checkpoints
                           and ``logs["learning_rate"]`` keep seeing the base rate
    state.epoch_rng_state  the RNG state this pass's order was drawn from: a run resumed
                           mid-epoch draws the same permutation again from it
    state.sums             this epoch's running loss and metric sums (`EpochSums`)
    state.callbacks        the `CallbackList` of the current fit (their states are part of a run)
    state.want_grad_norms  set by a callback (GradientNoiseScale) in ``on_train_begin``:
    state.grad_norms       then every step sets a NEW dict of gradient norms here (see train_step)
    state.interrupt_requested  set by a signal handler (`gradfit.train.interrupt`): the run
                           stops after the step in progress, on every rank
    state.stop_reason      None while training; "nan" (a non-finite loss stopped the run),
                           "callback" (a callback set ``model.stop_training``) or "interrupted"
                           (Ctrl-C / SIGTERM, after a whole step)
    state.stop_message     the sentence that says why the run stopped

`snapshot` / `restore` turn the position, the RNG and every callback's state into JSON plus
arrays and back (the weights and ``opt`` travel with the model, see `gradfit.saving`), which is
all `BackupAndRestore` needs for a bit-identical resume. Nothing in a snapshot depends on the
number of MPI ranks (the epoch's metric sums are reduced into it), so a run resumes on any.
"""
from __future__ import annotations

import numpy as np

from ..datasets import check_same_source
from ..utils import get_rng_state, set_rng_state


class EpochSums:
    """Running sums of one epoch: the loss is global (Allreduced every step); metric sums are
    this rank's and are reduced once, at the end of the epoch.

    ``values = [sum of batch loss * batch size, examples seen (global), examples seen (this
    rank), metric sums...]``.
    """

    def __init__(self, n_metrics, values=None):
        self.values = np.zeros(3 + n_metrics) if values is None else np.asarray(values, dtype=float)

    def add(self, loss, global_b, local_b, metric_sums):
        self.values[0] += loss * global_b
        self.values[1] += global_b
        self.values[2] += local_b
        self.values[3:] += metric_sums

    @property
    def loss(self):
        return self.values[0] / max(self.values[1], 1)

    def logs(self, model):
        """{"loss": ..., metric: ...} of the epoch so far, metrics reduced over the ranks."""
        logs = {"loss": float(self.loss)}
        if model.metrics:
            local = np.concatenate([[self.values[2]], self.values[3:]])
            total = model.comm.allreduce_(local)
            for i, (name, _) in enumerate(model.metrics):
                logs[name] = float(total[1 + i] / total[0])
        return logs


class TrainState:
    """The position of a training run and the optimizer state (see the module docstring)."""

    def __init__(self):
        self.opt = None
        self.callbacks = None
        self.want_grad_norms = False
        self.grad_norms = None
        self.interrupt_requested = False
        self.start(0, 0, 0)

    def start(self, epoch: int, batch_size: int, n_metrics: int, source: dict | None = None) -> None:
        """Reset the progress for a new ``fit`` starting at ``epoch`` (the optimizer state stays);
        ``source``: the training data's identity."""
        self.epoch = int(epoch)
        self.batch_size = int(batch_size)
        self.lr_factor = 1.0
        self._n_metrics = n_metrics
        self.source = source
        self.stop_reason = None
        self.stop_message = None
        self.interrupt_requested = False
        self.last_logs = {}
        self.val_position = 0
        self.new_pass()
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.step = 0
        self.sums = EpochSums(self._n_metrics)

    def new_pass(self) -> None:
        """Start a new pass over the data: a new order, from the first row."""
        self.seen = 0
        self.position = 0
        self.epoch_rng_state = None

    def init_optimizer(self, model) -> dict:
        """The optimizer state, created for the model's flat buffer on first use."""
        if self.opt is None:
            self.opt = model.optimizer.init(model.params, segments=model.flat.segments)
        return self.opt

    # -- advancing ------------------------------------------------------------------------------
    def finish_step(self, global_b: int, local_b: int, loss: float, metric_sums) -> None:
        """Account for one optimizer step on a global batch of ``global_b`` rows."""
        self.step += 1
        self.seen += global_b
        self.position += 1
        self.sums.add(loss, global_b, local_b, metric_sums)

    def finish_epoch(self, pass_continues: bool = False) -> None:
        """Move to the start of the next epoch (the loop calls it before ``on_epoch_end``, so a
        backup written there resumes with the next epoch); the pass over the data ends with the
        epoch unless ``pass_continues`` (``steps_per_epoch``)."""
        self.epoch += 1
        self._new_epoch()
        if not pass_continues:
            self.new_pass()

    def stop(self, reason: str, message: str | None = None) -> None:
        self.stop_reason = reason
        self.stop_message = message

    # -- checkpoints ----------------------------------------------------------------------------
    def snapshot(self, comm=None) -> dict:
        """The position (the data's cursor and identity included), the RNG (now and at the
        pass's start) and every callback's state.

        Collective under MPI (every rank calls it; rank 0 writes it): this rank's metric sums
        of the epoch so far are summed over the ranks, so the snapshot is the same whatever the
        number of ranks. JSON-able except for numpy arrays inside callback states
        (`gradfit.saving` stores them apart)."""
        sums = np.array(self.sums.values)
        if comm is not None and comm.size > 1:      # [loss, seen] are global already
            local = np.array(sums[2:])
            comm.allreduce_array_(local)
            sums[2:] = local
        return {"epoch": self.epoch, "step": self.step, "seen": self.seen,
                "position": self.position, "val_position": self.val_position,
                "batch_size": self.batch_size, "lr_factor": self.lr_factor,
                "epoch_rng_state": self.epoch_rng_state, "source": self.source,
                "rng_state": get_rng_state(), "sums": [float(v) for v in sums],
                "callbacks": None if self.callbacks is None else self.callbacks.get_state()}

    def restore(self, snap: dict, rank: int = 0) -> None:
        """Continue from `snapshot`'s position: the next step is the one after the snapshot.

        Raises DatasetError (before anything changes) when the snapshot was taken on other
        data. The epoch's metric sums, reduced over the ranks in the snapshot, go to rank 0
        (the others start from 0), so that their sum at the epoch's end is right on any number
        of ranks."""
        check_same_source(snap.get("source"), self.source)
        self.epoch, self.step, self.seen = int(snap["epoch"]), int(snap["step"]), int(snap["seen"])
        self.position = int(snap.get("position", self.step))   # older backups: arrays, by step
        self.val_position = int(snap.get("val_position", 0))
        self.batch_size = int(snap["batch_size"])
        self.lr_factor = float(snap.get("lr_factor", 1.0))    # backups before the factor: 1
        self.epoch_rng_state = snap["epoch_rng_state"]
        self.sums = EpochSums(self._n_metrics, snap["sums"])
        if rank != 0:
            self.sums.values[2:] = 0.0
        set_rng_state(snap["rng_state"])
        if self.callbacks is not None and snap.get("callbacks") is not None:
            self.callbacks.set_state(snap["callbacks"])
