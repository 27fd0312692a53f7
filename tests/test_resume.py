"""Kill-and-resume equals uninterrupted, bit for bit: a real subprocess killed with SIGKILL."""
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "resumable_fit.py")


def _run(tmp, name, kill_at, save_freq, backup):
    out = str(tmp / f"{name}.npy")
    proc = subprocess.run([sys.executable, SCRIPT, str(backup), out, str(kill_at), str(save_freq)],
                          capture_output=True, text=True, timeout=120)
    return proc, out


@pytest.mark.parametrize("save_freq, kill_at", [("epoch", 15), ("3", 17), ("3", 6), ("3", 40)])
def test_sigkill_then_resume_is_bit_identical(tmp_path, save_freq, kill_at):
    # 200 examples / batch 32 = 6 steps per epoch: kills land mid-epoch
    proc, ref = _run(tmp_path, "ref", -1, save_freq, tmp_path / "ref_backup")
    assert proc.returncode == 0, proc.stderr
    proc, _ = _run(tmp_path, "killed", kill_at, save_freq, tmp_path / "backup")
    assert proc.returncode == -9, f"the run should have been killed: {proc.returncode} {proc.stderr}"
    assert os.path.exists(tmp_path / "backup" / "backup.gfm")
    proc, resumed = _run(tmp_path, "resumed", -1, save_freq, tmp_path / "backup")
    assert proc.returncode == 0, proc.stderr
    a, b = np.load(ref), np.load(resumed)
    assert a.dtype == np.float32
    assert np.array_equal(a, b), f"max difference {np.abs(a - b).max()}"
    np.testing.assert_array_equal(np.load(ref + ".loss.npy")[-1], np.load(resumed + ".loss.npy")[-1])
    lr_ref, lr_resumed = np.load(ref + ".lr.npy"), np.load(resumed + ".lr.npy")
    assert lr_ref[-1] == lr_resumed[-1]
    assert lr_ref.min() < lr_ref[0], "ReduceLROnPlateau should have lowered the rate in this run"


def test_corrupt_backup_is_a_clear_error(tmp_path):
    proc, _ = _run(tmp_path, "killed", 15, "epoch", tmp_path / "backup")
    path = tmp_path / "backup" / "backup.gfm"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    proc, _ = _run(tmp_path, "resumed", -1, "epoch", tmp_path / "backup")
    assert proc.returncode != 0
    assert "checksum" in proc.stderr and "delete" in proc.stderr
