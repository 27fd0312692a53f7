"""A training step allocates no large arrays: every buffer is preallocated (issue #8, lean step).

tracemalloc sees numpy's data allocations, so the peak of new memory during steps after the
first bounds every temporary array of forward, backward, loss and the optimizer update. What
remains is small and bounded: numpy's ufunc buffers for broadcasting (8192 elements for each
of the two operands of the outer product dz W^T of a one-unit layer) and the boolean mask of a
ReLU derivative (B x units bytes, a quarter of one activation).
"""
import tracemalloc

import numpy as np
import pytest

import gradfit
from gradfit import Dense, Input, Sequential
from gradfit.train.step import train_step

pytest.importorskip("numba")   # the fused optimizer kernel is what keeps the update allocation-free


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("batch", [8, 128])
def test_training_step_allocates_nothing_parameter_sized(optimizer, batch):
    gradfit.set_random_seed(0)
    model = Sequential([Input(shape=(100,)), Dense(500, activation="relu"),
                        Dense(1000, activation="relu"), Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    x = rng.random((batch, 100), dtype=np.float32)
    y = rng.random((batch, 1), dtype=np.float32)
    model.prepare(x)
    for _ in range(2):  # first steps allocate the buffers of this batch size
        train_step(model, model.train_state, x, y, batch)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(3):
            train_step(model, model.train_state, x, y, batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    param_bytes = model.params.nbytes
    assert model.count_params() > 500_000    # big enough for the fused optimizer path
    allocated = peak - before
    relu_mask, ufunc_buffers = batch * 1000, 2 * 8192 * 4 + 4096
    assert allocated <= relu_mask + ufunc_buffers, f"a step allocated {allocated} bytes"
    assert allocated < 0.1 * param_bytes
