"""gradfit.lab: optimizers compared, with figures (``gradfit compare``).

    toy/                 2-D test problems (Rosenbrock, Beale, ...): paths and losses per step
    net/                 networks (the Adam paper's Figure 2 setup): cost per iteration
    second_order_problems.py   MATLAB's SIN, PARITY, CANCER and a width sweep (second order)

``from gradfit.lab import toy, net``; each subpackage lists its own API.
"""
