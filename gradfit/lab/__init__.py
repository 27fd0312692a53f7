"""gradfit.lab: optimizers compared, with figures (``gradfit compare``).

    toy/                 2-D test problems (Rosenbrock, Beale, ...): paths and losses per step
    net/                 networks (the Adam paper's Figure 2 setup): cost per iteration
    second_order/        Newton, LM, BFGS, ... against SGD, momentum, Adam on MATLAB's SIN,
                         PARITY, CANCER and a width sweep: to the goal or the memory wall

``from gradfit.lab import toy, net, second_order``; each subpackage lists its own API.
"""
