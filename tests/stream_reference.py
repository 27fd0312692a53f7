"""The data side of the training loop over a batch source, as `gradfit.train.loop.fit` is to
call it (issue 16, phase 1: a reference for the tests and benchmarks until ``fit`` streams).

It follows the protocol of `gradfit.datasets.sources` and nothing else: the order of the
epoch comes from the source and gradfit's one RNG, batches and rank slices from
`gradfit.train.batching`, the rows from ``source.fetch`` through a `Prefetcher`, each step
from `train_step`. No callbacks, validation or backups: those stay the loop's.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

from gradfit.backend import xp
from gradfit.datasets import Conversion, Exhausted, Prefetcher, Request
from gradfit.datasets.sources import ran_out_message
from gradfit.train.batching import next_batch, rank_slice
from gradfit.train.step import train_step
from gradfit.utils import get_rng_state, rng


def stream_fit(model, source, *, batch_size=None, epochs=1, shuffle=True, drop_remainder=True,
               steps_per_epoch=None, on_step=None):
    """Train ``model`` for ``epochs`` epochs on ``source``; ``on_step(state)`` after each step."""
    comm, state = model.comm, model.train_state
    x0, _ = source.peek()
    model.prepare(model.check_inputs(x0))
    source.bind(Conversion(model.dtype.name, model.output_dim if model.loss.sparse else None,
                           labels=bool(model.loss.sparse)))
    state.start(0, batch_size or 0, len(model.metrics))
    state.init_optimizer(model)
    position = 0                                  # a stream's cursor (batches drawn)
    while state.epoch < epochs:
        source.check_unchanged()
        if source.unit == "stream" and not steps_per_epoch:
            position = 0                          # Keras: every epoch iterates afresh
        state.epoch_rng_state = get_rng_state()
        order = source.epoch_order(rng(), shuffle) if source.unit != "stream" else None
        if hasattr(source, "on_epoch_begin"):
            source.on_epoch_begin()
        requests = _requests(source, state, order, position, steps_per_epoch, drop_remainder, comm)
        with Prefetcher(source.fetch, requests, **source.prefetch) as feed:
            while True:
                try:
                    request, (x, y) = next(feed)
                except StopIteration:
                    break
                except Exhausted:
                    warnings.warn(ran_out_message(state.epoch, state.step, steps_per_epoch))
                    position = 0
                    break
                position += source.unit == "stream"
                x, y, global_b, offset = _this_rank(source, request, x, y, order, state,
                                                     drop_remainder, comm)
                x, y = model.check_inputs(x), model.check_targets(y, len(x))
                result = train_step(model, state, xp().asarray(x), xp().asarray(y), global_b, offset)
                if result is None:
                    break
                state.finish_step(global_b, len(x), *result)
                if on_step is not None:
                    on_step(state)
                if state.stop_reason == "interrupted":      # Ctrl-C: after a whole step
                    break
        if hasattr(source, "on_epoch_end"):
            source.on_epoch_end()
        if state.step == 0 or state.stop_reason in ("nan", "interrupted"):
            break
        state.finish_epoch()
    model.set_shard(0, None)
    return state


def _requests(source, state, order, position, steps_per_epoch, drop_remainder, comm):
    """This rank's requests for the rest of the epoch, from the state's cursor."""
    if source.unit == "row":
        seen, step = state.seen, state.step
        while (batch := next_batch(order, seen, state.batch_size, drop_remainder)) is not None:
            yield Request(state.epoch, step, rank_slice(batch, comm.rank, comm.size)[0])
            seen, step = seen + len(batch), step + 1
            if steps_per_epoch and step >= steps_per_epoch:
                return
    elif source.unit == "batch":
        stop = min(len(order), steps_per_epoch or len(order))
        for step in range(state.step, stop):
            yield Request(state.epoch, step, int(order[step]))
    else:
        steps = range(state.step, steps_per_epoch) if steps_per_epoch else itertools.count(state.step)
        for k, step in enumerate(steps):
            yield Request(state.epoch, step, position + k)


def _this_rank(source, request, x, y, order, state, drop_remainder, comm):
    """(x, y, global batch size, offset) of this rank's rows of the step."""
    if source.unit == "row":     # the loop's plan says which global batch this is
        batch = next_batch(order, state.seen, state.batch_size, drop_remainder)
        idx, offset = rank_slice(batch, comm.rank, comm.size)
        assert np.array_equal(idx, request.key), "the prefetched rows are not this step's"
        return x, y, len(batch), offset
    rows, offset = rank_slice(np.arange(len(x)), comm.rank, comm.size)
    return x[rows], None if y is None else y[rows], len(x), offset
