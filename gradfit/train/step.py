"""`train_step`: one step of mini-batch gradient descent, the same for every caller.

``fit``, ``Sequential.train_on_batch``, the benchmarks and the profiler all call this one
function, so the step they time or take is the step training takes, Allreduce and finite-loss
check included: ranks calling ``train_on_batch`` under ``mpiexec`` stay equal too.  A
second-order method (Newton, LM, BFGS, ...) takes its step here as well: one iteration on an
objective over the rows instead of one update from their gradient (`second_order.step`).
"""
from __future__ import annotations

import math
import warnings

from ..backend import xp
from ..callbacks.base import print_msg
from . import second_order


def train_step(model, state, x, y, global_batch: int, offset: int = 0, mark=None):
    """One optimizer step on this rank's rows ``(x, y)`` of a global batch.

    ``x`` (b, n_in) and ``y`` (b, ...) are backend arrays holding rows ``[offset, offset + b)``
    of a global batch of ``global_batch`` rows (one process: ``b == global_batch``, offset 0).

    1. Forward and backward over (x, y); the loss is divided by ``global_batch`` (the batch-mean
       convention of `gradfit.losses`), so the sum over ranks of the rank gradients is the
       gradient of the global batch mean.
    2. One Allreduce of the flat gradient buffer, with the batch loss and this rank's stop
       request (``state.interrupt_requested``: Ctrl-C, SIGTERM) in its two spare slots, so that
       every rank sees a request made on any rank after the same step. With ``state.want_grad_norms``, ``state.grad_norms`` becomes a NEW dict of squared norms
       of this rank's mean gradient (before the sum) and of the global one (after it).
    3. The weight penalties, once, after the sum: the same on every rank.
    4. A non-finite loss stops here, before it reaches the weights: ``state.stop("nan", ...)``.
    5. The optimizer step (its learning rate times ``state.lr_factor``, 1 unless the batch size
       is adaptive), the same on every rank; after it, a stop request from any rank is
       ``state.stop("interrupted")``: the loop ends after this step.

    Returns ``(loss, metric_sums)``: the global batch loss and this rank's metric sums over its
    rows (computed on the outputs before the step, as Keras), or None after a non-finite loss.
    ``mark(name)``, when given, is called after each part (the profiler's clock).

    With a second-order method, 1-5 are one iteration of it (`second_order.step`): the
    Allreduce happens once per evaluation inside it, the finite check on the loss before it.
    """
    if second_order.is_second_order(model.optimizer):   # an objective instead of a gradient
        loss, metric_sums = second_order.step(model, state, x, y, global_batch)
        if not math.isfinite(loss):
            _stop_on_nan(model, state, loss)
            return None
        return loss, metric_sums
    comm = model.comm
    model.set_shard(offset, global_batch if comm.size > 1 else None)
    loss, y_pred = model.compute_gradients(x, y, denom=global_batch, mark=mark)
    metric_sums = [m.batch_sum(y_pred, y) for _, m in model.metrics]
    g = model.flat.grad_with_loss
    g[-1] = loss
    g[-2] = 1.0 if state.interrupt_requested else 0.0
    if state.want_grad_norms:   # this rank's mean gradient over its own rows, before the sum
        local_sq = float(xp().vdot(model.grads, model.grads)) * (global_batch / len(x)) ** 2
    comm.allreduce_(g)
    loss = float(g[-1])
    if state.want_grad_norms:
        state.grad_norms = {"local_sq": local_sq, "b_local": len(x), "b_global": global_batch,
                            "global_sq": float(xp().vdot(model.grads, model.grads))}
    if model.regularized:
        loss += model.regularization(add_gradients=True)
    if not math.isfinite(loss):
        _stop_on_nan(model, state, loss)
        return None
    if mark is not None:
        mark("Allreduce, weight penalties, finite check")
    model.optimizer.update(model.params, model.grads, state.init_optimizer(model),
                           lr_scale=state.lr_factor)
    if mark is not None:
        mark(f"optimizer update ({type(model.optimizer).__name__})")
    if g[-2] > 0:
        state.stop("interrupted", f"interrupted at epoch {state.epoch + 1}, step {state.step + 1}")
    return loss, metric_sums


def _stop_on_nan(model, state, loss) -> None:
    # The weights are checked only here, not every step: a full pass over them costs too much.
    if bool(xp().isfinite(model.params).all()):
        what = "this step's update was not applied"
    else:
        what = ("the weights themselves are no longer finite: the previous update overflowed "
                "(EarlyStopping(restore_best_weights=True) restores the best epoch's weights)")
    msg = (f"training stopped: the loss became {loss} at epoch {state.epoch + 1}, step "
           f"{state.step + 1}; {what}. Try a smaller learning rate, gradient clipping, or check "
           "the data")
    print_msg(model, msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    model.stop_training = True
    state.stop("nan", msg)
