"""The time-to-target benchmark of issue 18 (``benchmarks/time_to_target.py`` is its command).

    workloads.py    the data, split, evaluation split and target of each workload
    recipes.py      the training recipes ("same", "algoperf", "best" from best_recipe.json)
    clock.py        the clock and the record every run prints (versions, threads, BLAS kernel)
    run_gradfit.py  gradfit through its public API (Sequential, compile, fit, a callback)
    run_torch.py    PyTorch, written for CPU speed
    run_keras.py    Keras 3 on its torch or JAX backend
    driver.py       the frameworks interleaved over seeds, each run a fresh process; medians
"""
