"""The lecture's alternative forms of momentum, over a gradient function ``grad_fn(theta)``.

Networks use the velocity forms in ``optimizers.SGD`` (gradient at the stored parameters);
these forms need the gradient at a point of their choosing, which toy problems can give.
``tests/test_optim.py`` proves the equivalences stated here.

* **Heavy ball** (Polyak 1964)::

      theta_{t+1} = theta_t - lr g(theta_t) + mu (theta_t - theta_{t-1}),   theta_{-1} = theta_0

  Same trajectory as the velocity form ``v <- mu v - lr g(theta); theta <- theta + v``
  (``SGD(momentum=mu)``), since ``v_t = theta_t - theta_{t-1}``.

* **Lookahead Nesterov** (Nesterov 1983, Sutskever et al. 2013)::

      v_{t+1} = mu v_t - lr g(theta_t + mu v_t);   theta_{t+1} = theta_t + v_{t+1}

  With ``theta~_t = theta_t + mu v_t`` this becomes ``theta~_{t+1} = theta~_t + mu v_{t+1}
  - lr g(theta~_t)``: ``SGD(momentum=mu, nesterov=True)``, which stores ``theta~``.

Shapes: ``theta0`` is a 1-D array of ``n`` values; trajectories are ``(steps + 1, n)``.
"""
from __future__ import annotations

import numpy as np


def heavy_ball(grad_fn, theta0, learning_rate, momentum, steps):
    """Trajectory of the heavy-ball iteration, ``(steps + 1, n)`` (row 0 is ``theta0``)."""
    traj = [np.array(theta0, dtype=float)]
    prev = traj[0]
    for _ in range(steps):
        cur = traj[-1]
        traj.append(cur - learning_rate * grad_fn(cur) + momentum * (cur - prev))
        prev = cur
    return np.stack(traj)


def nesterov_lookahead(grad_fn, theta0, learning_rate, momentum, steps):
    """``(thetas, velocities)`` of the lookahead form, each ``(steps + 1, n)``, ``v_0 = 0``."""
    theta = np.array(theta0, dtype=float)
    v = np.zeros_like(theta)
    thetas, vs = [theta], [v]
    for _ in range(steps):
        v = momentum * v - learning_rate * grad_fn(theta + momentum * v)
        theta = theta + v
        thetas.append(theta)
        vs.append(v)
    return np.stack(thetas), np.stack(vs)


def trajectory(optimizer, grad_fn, theta0, steps):
    """Run any gradfit optimizer on ``grad_fn``; ``(steps + 1, n)`` float64 trajectory."""
    theta = np.array(theta0, dtype=float)
    state = optimizer.init(theta)
    traj = [theta.copy()]
    for _ in range(steps):
        optimizer.update(theta, np.array(grad_fn(theta), dtype=float), state)
        traj.append(theta.copy())
    return np.stack(traj)
