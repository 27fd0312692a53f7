"""gradfit bench: the --quick smoke run writes well-formed JSON (no speed thresholds)."""
import argparse
import json

import numpy as np
import pytest

from gradfit import bench
from gradfit.commands import bench as bench_command
from gradfit.bench.matmul import naive_matmul
from gradfit.bench.timing import time_call, time_interleaved
from gradfit.bench.training import n_params


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    frameworks = "gradfit,torch" if _has("torch") else "gradfit"
    args = parser.parse_args(["--quick", "--threads", "1", "--json", str(path),
                              "--frameworks", frameworks])
    assert bench_command.run(args) == 0
    return json.loads(path.read_text())


def _has(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def test_header_names_versions_threads_and_blas_kernel(quick_results):
    env = quick_results["environment"]
    assert quick_results["quick"] is True and quick_results["schema"] == bench.SCHEMA_VERSION
    assert env["versions"]["numpy"] == np.__version__
    assert env["threads"]["requested"] == 1
    assert env["cpu"] and "kernel" in env["blas"] or "unknown" in env["blas"]
    if _has("threadpoolctl"):
        blas = [p for p in env["thread_pools"] if p.get("user_api") == "blas"]
        # numpy's own BLAS (scipy may have loaded another copy after the limit was set)
        ours = [p for p in blas if "numpy" in str(p.get("filepath", ""))] or blas
        assert ours and ours[0]["internal_api"] and ours[0]["num_threads"] == 1


def test_matmul_and_optimizer_sections(quick_results):
    names = [r["name"] for r in quick_results["matmul"]]
    assert any("Python" in n for n in names) and any("numpy" in n for n in names)
    for r in quick_results["matmul"]:
        m, k, n = r["shape"]
        assert r["gflops"] == pytest.approx(2 * m * k * n / r["seconds"] / 1e9)
    opt = quick_results["optimizer_step"]
    assert opt["copy"] and all(c["gbps"] > 0 for c in opt["copy"])
    paths = {(r["optimizer"], r["path"]) for r in opt["steps"] if "error" not in r}
    assert ("adam", "numpy reference") in paths
    for r in opt["steps"]:
        if "error" not in r:
            assert r["gbps"] == pytest.approx(r["bytes"] / r["seconds"] / 1e9)
    if _has("torch"):
        assert ("adam", "torch Adam(fused=True)") in paths


def test_training_rows(quick_results):
    rows = quick_results["training"]
    assert not [r for r in rows if "error" in r], [r["error"] for r in rows if "error" in r]
    frameworks = {r["framework"].split()[0] for r in rows}
    assert "gradfit" in frameworks and ("torch" in frameworks) == _has("torch")
    matmul = next(r["gflops"] for r in quick_results["matmul"] if "float32" in r["name"])
    for r in rows:
        assert r["parameters"] == n_params(r["sizes"])
        assert r["samples_per_s"] == pytest.approx(r["batch"] / r["seconds_per_step"])
        assert r["seconds_per_step"] <= r["seconds_median"]
        assert r["gflops"] == pytest.approx(6 * r["parameters"] * r["batch"]
                                            / r["seconds_per_step"] / 1e9)
        assert r["fraction_of_matmul"] == pytest.approx(r["gflops"] / matmul)
    assert len(quick_results["targets"]) == 7
    assert all(set(t) >= {"target", "goal", "value", "met"} for t in quick_results["targets"])


def test_report_text(quick_results):
    text = bench.format_report(quick_results)
    order = ["BLAS (numpy)", "(a) matrix product", "(b) training", "(c) optimizer", "GB/s",
             "Speed targets, docs/speed.md"]
    positions = [text.index(needle) for needle in order]
    assert positions == sorted(positions), "sections print in the order of their letters"
    assert "issue #" not in text


def test_a_contender_that_is_not_installed_is_a_row_saying_so(monkeypatch):
    from gradfit.bench import training
    monkeypatch.setattr(training, "_importable", lambda name: False)
    rows = training.run_training(1, None, frameworks=("gradfit", "torch", "keras"), quick=True,
                                 batches=(2,))
    missing = [r for r in rows if r["framework"] in ("torch", "keras")]
    assert {r["framework"] for r in missing} == {"torch", "keras"}
    assert all("not installed: pip install" in r["error"] for r in missing)
    text = bench.format_report({"started": "now", "seconds": 0.0, "training": rows,
                                "environment": bench.environment(1)})
    assert "torch" in text and "error: ImportError: not installed: pip install torch==2.13.0" in text


def test_naive_matmul_is_a_matmul():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(naive_matmul(a.tolist(), b.tolist()), a @ b, rtol=1e-12)


def test_time_call_takes_the_best_repeat():
    calls = []
    assert time_call(lambda: calls.append(1), min_time=0.001, repeats=3, warmup=2) > 0
    assert len(calls) >= 2 + 1 + 3


def test_time_interleaved_takes_turns_and_reports_best_and_median():
    calls = []
    out = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           rounds=3, min_time=1e-9, warmup=1)
    # warm-up, then each in turn every round (time_call: a sizing call, then the timed one)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert set(out) == {"a", "b"}
    assert all(0 < best <= median for best, median in out.values())


def test_profile_parts_cover_the_step():
    from gradfit.bench.profile import format_profile, profile_step
    prof = profile_step([8, 16, 3], "ce", 4, steps=5)
    names = [n for n, _ in prof["rows"]]
    assert sum(n.startswith("forward") for n in names) == 2
    assert sum(n.startswith("backward") for n in names) == 2
    assert names[-1].startswith("optimizer update (Adam")
    assert prof["total"] > 0 and "8-16-3" in format_profile(prof)
    # timed inside the same steps, the parts' medians add up to about the median step
    assert 0.5 * prof["total"] < prof["sum_of_parts"] < 1.5 * prof["total"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="mxnet"):
        bench.run_bench(quick=True, frameworks=("mxnet",), sections=())
    with pytest.raises(ValueError, match="threads"):
        bench.run_bench(quick=True, threads=-2, sections=())
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    with pytest.raises(ValueError, match="gpu"):
        bench_command.run(parser.parse_args(["--quick", "--sections", "gpu", "--json", "-"]))
    with pytest.raises(ValueError, match="unknown networks.*resnet.*lecture, adam, small"):
        bench_command.run(parser.parse_args(["--networks", "lecture,resnet", "--json", "-"]))
    with pytest.raises(ValueError, match="unknown optimizers.*adamax"):
        bench_command.run(parser.parse_args(["--optimizers", "adamax", "--json", "-"]))
    for bad in ("0,8", "8,,16", "eight"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--batch-sizes", bad])


def test_network_and_optimizer_subsets():
    from gradfit.bench.optstep import run_optstep
    from gradfit.bench.training import run_training
    rows = run_training(1, None, ("gradfit",), batches=(8,), networks=("small",))
    assert {r["network"] for r in rows} == {"small"} and len(rows) == 2  # train_on_batch, step
    res = bench.run_bench(threads=1, frameworks=("gradfit",), sections=("training",),
                          networks=("small",), batches=(16,))
    assert {(r["network"], r["batch"]) for r in res["training"]} == {("small", 16)}
    steps = run_optstep(20_000, 1, quick=True, optimizers=("adam",))["steps"]
    assert {r["optimizer"] for r in steps} == {"adam"}


def test_thread_counts_are_restored_after_a_run():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    bench.run_bench(quick=True, threads=1, sections=("matmul",))
    assert numba.get_num_threads() == before


def test_benchmark_scripts_run(tmp_path):
    # the scripts behind docs/speed.md, on tiny sizes: they must keep running
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "dense_products.py"),
                          "--threads", "1", "--batches", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert "TRANSPOSED_DX_MAX" in out and "1000x2000 B=2" in out and "broadcast multiply" in out
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "targets_spread.py"),
                          "--runs", "2", "--threads", "1", "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "2 runs" in out and "lecture net, batch 8" in out
    assert len(list(tmp_path.glob("run*-1threads.json"))) == 2


@pytest.mark.mpi
def test_mpiexec_forms_benchmark_runs():
    """benchmarks/mpiexec_forms.py (plain mpiexec against the launcher), as a smoke run: every
    form trains and reports a time per step; the speed itself is for docs/parallel.md."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import clean_mpi_env
    from gradfit.parallel import launch
    if launch.find_mpiexec(required=False) is None:
        pytest.skip("mpiexec not found (pip install 'gradfit[mpi]')")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "mpiexec_forms.py"), "--quick"],
                          capture_output=True, text=True, timeout=600, env=clean_mpi_env())
    assert proc.returncode == 0, proc.stderr
    for form in ("plain mpiexec -n 2", "launcher -n 2", "1 process"):
        assert form in proc.stdout
    assert "plain / launcher (median ms/step):" in proc.stdout
