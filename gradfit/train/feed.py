"""The data side of the training loop: this rank's rows of every step, read ahead.

`Feed` turns a batch source (`gradfit.datasets.sources`) and the run's cursor
(``model.train_state``) into the batches of an epoch; the loop only iterates them and does not
care where they come from.

**The plan** is the same on every rank and depends only on the cursor, so a resumed run, on
any number of ranks, continues it exactly (the global batch never depends on the rank count):

* rows (arrays, memmaps, packed shards): a pass over the data is one order of all rows,
  ``source.epoch_order(rng)``, drawn from gradfit's one generator at the pass's start (whose
  state is ``state.epoch_rng_state``): the lecture's permutation, or a packed source's block
  shuffle. Step k trains the global batch ``next_batch(order, state.seen, state.batch_size)``
  (disjoint batches of equal size, even when AdaptiveBatchSize changes the size between
  steps), and rank r asks the source for its contiguous slice of it only (`rank_slice`): each
  rank reads 1/N of the rows.
* batches (a PyDataset with a length): a pass is a permutation of the batch indices (in order
  without shuffle); step k trains batch ``order[state.position]``. Every rank reads the whole
  batch (a PyDataset cannot be asked for part of one) and trains its slice of the rows.
* a stream (a generator, an iterable, an endless PyDataset): step k trains the batch at
  ``state.position`` in the stream; every rank iterates its own copy of the data (the same
  script makes the same generator) and trains its slice.

**Epochs and passes**, as Keras 3: without ``steps_per_epoch`` an epoch is one pass (a stream
is iterated afresh every epoch). With it, an epoch is ``steps_per_epoch`` steps of a pass that
continues into the next epoch; a pass that ends first ends the epoch with Keras's warning
("Your input ran out of data"), and the next epoch starts a new pass (a new permutation, a
stream iterated again). An epoch that gets no batch at all (a used-up generator) stops
training (``ran_dry``) with that warning: never a hang.

**Reading ahead**: the epoch's requests go to a `Prefetcher` (threads or processes, as the
source asks), which reads and converts batch k+1 while step k trains. A request is made from the
cursor as it stands when the prefetcher asks for it; a batch whose plan no longer holds when
the loop reaches it (AdaptiveBatchSize changed the batch size after it was read) is dropped,
and reading restarts from the cursor.

**Equal steps on every rank, by construction**: row and batch plans are the same on every
rank. A stream cannot promise it (one rank's generator may run out first), so under MPI, for
batch and stream sources, the ranks agree on every batch with one small Allreduce before the
step (every rank has one, of one size); when a rank ran out, the epoch ends on all of them
instead of leaving the others waiting in the gradient's Allreduce (pytorch#33148).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import NamedTuple

import numpy as np

from ..backend import xp
from ..datasets import DatasetError, Exhausted, Prefetcher, Request
from ..datasets.sources import ran_out_message
from ..utils import get_rng_state, rng, set_rng_state
from .batching import next_batch, rank_bounds, rank_slice, steps_per_epoch
from .data import batch_targets


class Batch(NamedTuple):   # a tuple: made every step, it must cost next to nothing
    """This rank's rows of one step: ``x`` (b, input width) and ``y`` (b, ...) backend arrays,
    rows ``[offset, offset + b)`` of a global batch of ``size`` rows."""

    x: object
    y: object
    size: int
    offset: int


class _Plan(NamedTuple):
    """What a row request assumed (the cursor it was made at) and the global batch it reads."""

    seen: int
    batch_size: int
    size: int
    offset: int


class Feed:
    """The batches of every epoch of ``source`` for ``model`` (see the module docstring)."""

    def __init__(self, model, source, *, shuffle=True, drop_remainder=True, steps_per_epoch=None):
        self.model, self.source, self.comm = model, source, model.comm
        self.shuffle, self.drop_remainder = shuffle, drop_remainder
        self.steps_per_epoch = steps_per_epoch
        self.ran_dry = False          # the last epoch got no batch: training stops
        self._plans = {}
        self._order = (None, None)    # (the RNG state a pass was drawn from, its order)

    @property
    def continues(self) -> bool:
        """Whether a pass continues into the next epoch (``steps_per_epoch``, as Keras)."""
        return bool(self.steps_per_epoch)

    def steps(self, batch_size) -> int | None:
        """Steps per epoch when known beforehand (the progress bar's total), else None."""
        if self.steps_per_epoch:
            return self.steps_per_epoch
        unit = self.source.unit
        if unit == "row":
            return None if batch_size is None else steps_per_epoch(
                len(self.source), batch_size, self.drop_remainder)
        return self.source.num_batches if unit == "batch" else self.source.steps()

    # -- one epoch ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def epoch(self, state):
        """The batches of the epoch in progress from the state's cursor (an iterator of
        `Batch`); whatever ends the epoch, reading ahead stops on the way out."""
        source = self.source
        source.check_unchanged()
        if self._pass_used_up(state):
            state.new_pass()
        order = self._pass_order(state)
        if hasattr(source, "on_epoch_begin"):
            source.on_epoch_begin()
        batches = self._batches(state, order)
        try:
            yield batches
        finally:
            batches.close()
        if hasattr(source, "on_epoch_end"):
            source.on_epoch_end()

    def _pass_used_up(self, state) -> bool:
        unit = self.source.unit
        if unit == "row":         # what next_batch says at the cursor, without the order
            left = len(self.source) - state.seen
            return not (left >= state.batch_size or (left > 0 and not self.drop_remainder))
        return unit == "batch" and state.position >= self.source.num_batches

    def _pass_order(self, state):
        """This pass's order (None for a stream): drawn from the generator as it stands at a
        pass's start, and drawn again from the recorded state when the pass continues (a later
        epoch with steps_per_epoch, a resumed run), the generator then left where it was."""
        if self.source.unit == "stream":
            return None
        if state.epoch_rng_state is None:
            state.epoch_rng_state = get_rng_state()
            order = self.source.epoch_order(rng(), self.shuffle)
        elif self._order[0] is state.epoch_rng_state:
            return self._order[1]
        else:
            now = get_rng_state()
            set_rng_state(state.epoch_rng_state)
            order = self.source.epoch_order(rng(), self.shuffle)
            set_rng_state(now)
        self._order = (state.epoch_rng_state, order)
        return order

    def _batches(self, state, order):
        self.ran_dry = False
        stale = True
        while stale:                      # read again from the cursor after a stale batch
            stale = False
            self._plans.clear()
            with Prefetcher(self.source.fetch, self._requests(state, order),
                            **self.source.prefetch) as ahead:
                while (got := self._next(ahead, state)) is not None:
                    request, x, y = got
                    plan = self._plans.pop(request.step, None)
                    if plan is not None and (plan.seen, plan.batch_size) != (state.seen,
                                                                             state.batch_size):
                        stale = True      # the batch size changed after this batch was read
                        break
                    yield self._batch(x, y, plan)

    def _requests(self, state, order):
        """This rank's requests for the rest of the epoch, each made from the cursor as it
        stands when the prefetcher asks for it (see the module docstring)."""
        unit, epoch, rank, ranks = self.source.unit, state.epoch, self.comm.rank, self.comm.size
        seen, position, step = state.seen, state.position, state.step
        while not self.steps_per_epoch or step < self.steps_per_epoch:
            if unit == "row":
                size = state.batch_size
                batch = next_batch(order, seen, size, self.drop_remainder)
                if batch is None:
                    return
                rows, offset = rank_slice(batch, rank, ranks)
                self._plans[step] = _Plan(seen, size, len(batch), offset)
                yield Request(epoch, step, rows)
                seen += len(batch)
            else:
                if unit == "batch" and position >= len(order):
                    return
                yield Request(epoch, step, int(order[position]) if unit == "batch" else position)
                position += 1
            step += 1

    def _next(self, ahead, state):
        """(request, x, y) of the next step, or None when the epoch's batches are over."""
        request = x = y = None
        try:
            request, (x, y) = next(ahead)
        except StopIteration:
            if self.steps_per_epoch and state.step < self.steps_per_epoch:
                warnings.warn(ran_out_message(state.epoch, state.step, self.steps_per_epoch,
                                              rows=True), stacklevel=2)
            return None
        except Exhausted:
            pass
        if self.source.unit != "row" and self.comm.size > 1:
            if not self._agree(None if x is None else len(x), state):
                x = None              # another rank ran out: the epoch ends on every rank
        if x is None:
            self._ran_out(state)
            return None
        return request, x, y

    def _ran_out(self, state) -> None:
        """A stream ended: the epoch ends here and the next one iterates the data again."""
        if state.step == 0:
            self.ran_dry = True
            warnings.warn(ran_out_message(state.epoch, 0), stacklevel=2)
        elif self.steps_per_epoch:
            warnings.warn(ran_out_message(state.epoch, state.step, self.steps_per_epoch),
                          stacklevel=2)
        state.position = 0

    def _agree(self, rows, state) -> bool:
        """Whether every rank has a batch, of one size (one Allreduce of 2 x ranks numbers)."""
        comm = self.comm
        votes = np.zeros(2 * comm.size)
        votes[comm.rank] = rows is not None
        votes[comm.size + comm.rank] = rows or 0
        comm.allreduce_array_(votes)
        have, sizes = votes[:comm.size], votes[comm.size:].astype(int)
        if not have.all():
            return False
        if len(set(sizes.tolist())) > 1:
            raise DatasetError(f"epoch {state.epoch + 1}, batch {state.step + 1}: the ranks read "
                               f"batches of {sizes.tolist()} rows; every rank must iterate the "
                               f"same data (the same generator, the same PyDataset)")
        return True

    def _batch(self, x, y, plan) -> Batch:
        if plan is not None:                       # a row source read this rank's rows only
            size, offset = plan.size, plan.offset
        else:                                      # a whole batch: this rank's slice of it
            size = len(x)
            offset, hi = rank_bounds(size, self.comm.rank, self.comm.size)
            x, y = x[offset:hi], None if y is None else y[offset:hi]
        model, xpm = self.model, xp()
        x = x.reshape(len(x), model.input_dim)
        return Batch(xpm.asarray(x), xpm.asarray(batch_targets(model, y)), size, offset)
