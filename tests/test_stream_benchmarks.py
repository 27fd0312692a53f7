"""The streaming benchmarks quoted in docs/streaming.md run end to end on a small packed set:
`stream_bench.py --mode paired` times the streamed, control and in-memory sides in turns in one
process and prints their ratios, and
`gather_pwritev_probe.py` gathers the same bytes as `read_rows` (it asserts so itself) and
survives a gather from past the end of a truncated mapping."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradfit.datasets import pack

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def small_packed(tmp_path_factory):
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("stream") / "p"
    pack(rng.integers(0, 256, (3000, 28, 28), dtype=np.uint8),
         rng.integers(0, 10, 3000).astype(np.uint8), out, shard_rows=700)
    return out


def _run(script, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_paired_throughput_run_times_every_side_every_round(small_packed):
    stdout = _run("stream_bench.py", small_packed, "--mode", "paired", "--steps", 25,
                  "--rounds", 2, "--threads", 1, "--batch-size", 64)
    result = json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))
    sides = ("stream", "control", "memory")
    assert all(len(result[side]) == 2 and min(result[side]) > 0 for side in sides)
    for key, (a, b) in {"ratios": ("stream", "memory"), "stream_over_control": ("stream", "control"),
                        "control_over_memory": ("control", "memory")}.items():
        assert sorted(u / v for u, v in zip(result[a], result[b])) == pytest.approx(result[key])
    assert "round 2:" in stdout and "streaming / control (the reads' cost)" in stdout
    assert "BLAS: " in stdout                        # the kernel that ran is printed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memfd and pwritev: Linux only")
def test_the_pwritev_probe_gathers_the_bytes_read_rows_reads(small_packed):
    stdout = _run("gather_pwritev_probe.py", small_packed, "--batches", 20)
    assert "3000 rows of 785 bytes in 5 shards" in stdout
    assert "gathered 200 bytes before, 100 after" in stdout and "Bad address" in stdout
    assert stdout.count("pwritev from mappings") == 2 and stdout.count("read_rows") == 2
