"""`gradfit train` streaming from disk: ``--data PACKED_DIR`` and ``--data x.npy --labels y.npy``
train the same run; bad data are refused before anything is printed or written; a damaged
shard never costs the last good backup, and once repaired the run resumes exactly."""
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradfit
from gradfit import load_model
from gradfit.cli import main
from gradfit.datasets import pack

from test_cli_train import snapshot, strict_json


@pytest.fixture
def data(tmp_path):
    """The digits as uint8 pixels 0..16 (x.npy, y.npy) and packed in shards of 300 rows."""
    (x, y), (xt, yt) = gradfit.datasets.digits()
    x = (np.concatenate([x, xt]) * 16).round().astype(np.uint8)
    y = np.concatenate([y, yt]).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    pack(x, y, tmp_path / "packed", shard_rows=300)
    return tmp_path


ARGS = ["--hidden", "16", "--epochs", "2", "--verbose", "2", "--patience", "0"]


def test_a_packed_directory_and_a_npy_pair_train_the_same_run(data, capsys):
    assert main(["train", "--data", str(data / "packed"), "--out", str(data / "a"), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "Data: " in out and "streamed from disk (1294 / 144 / 359 rows" in out
    assert "Training on 1294 examples, validating on 144 examples: 40 batches of 32" in out
    assert main(["train", "--data", str(data / "x.npy"), "--labels", str(data / "y.npy"),
                 "--out", str(data / "b"), *ARGS]) == 0
    for name in ("history.csv",):
        assert (data / "a" / name).read_text() == (data / "b" / name).read_text()
    a, b = (strict_json(data / f / "results.json") for f in "ab")
    assert a["test"] == b["test"] and a["ended"] == "finished"
    assert np.array_equal(load_model(data / "a" / "model.gfm").params,
                          load_model(data / "b" / "model.gfm").params)
    config = strict_json(data / "a" / "config.json")
    assert config["streamed"] and config["train_examples"] == 1294


def _flip_a_byte(path):
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))


BAD = {
    "checksum": (lambda d: _flip_a_byte(d / "packed" / "shard-00002.npy"), ["packed"],
                 r"shard-00002.npy: SHA-256 [0-9a-f]+\.\.\. does not match the index's"),
    "truncated": (lambda d: os.truncate(d / "packed" / "shard-00001.npy", 1000), ["packed"],
                  r"shard-00001.npy has 1000 bytes, the index says \d+: the shard is truncated"),
    "no labels": (None, ["x.npy"], r"--labels must be a .npy file of targets with --data x.npy"),
    "labels twice": (None, ["packed", "--labels", "y.npy"],
                     r"--labels must be unset with a packed directory"),
    "lengths": (lambda d: np.save(d / "y.npy", np.load(d / "y.npy")[:-1]),
                ["x.npy", "--labels", "y.npy"], r"x and y have different lengths: 1797 and 1796"),
    "stray label": (lambda d: pack(np.load(d / "x.npy"), np.where(np.arange(1797) == 17, 10,
                                                                   np.load(d / "y.npy")),
                                   d / "packed", shard_rows=300, overwrite=True), ["packed"],
                    r"label\(s\) \[10\] occur in only 1 target\(s\) \(row 17 of packed: 10\).*"
                    r"--num-classes 11"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_on_disk_are_refused_before_anything_happens(case, data, capsys):
    damage, args, message = BAD[case]
    if damage is not None:
        damage(data)
    args = [str(data / args[0]), *[str(data / a) if a.endswith(".npy") else a for a in args[1:]]]
    before = snapshot(data)
    assert main(["train", "--data", *args, "--out", str(data / "run"), *ARGS]) == 2
    printed = capsys.readouterr()
    assert printed.out == "", "nothing is printed before the data are checked"
    assert printed.err.startswith("gradfit train: error: ")
    assert re.search(message, printed.err), printed.err
    assert snapshot(data) == before, "a refused run wrote or changed a file"


def _train(data, out, *more):
    return subprocess.run([sys.executable, "-m", "gradfit", "train", "--data", "packed", "--out",
                           out, "--backup", *LONG, *more], cwd=data, capture_output=True,
                          text=True, timeout=300)


LONG = ["--hidden", "400,400", "--epochs", "8", "--verbose", "2", "--patience", "0", "--seed", "3"]


def test_a_shard_damaged_between_runs_costs_no_backup_and_the_repaired_run_resumes(data):
    ref = _train(data, "ref")
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen([sys.executable, "-m", "gradfit", "train", "--data", "packed", "--out",
                             "run", "--backup", *LONG], cwd=data, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:                 # killed once epoch 1 is surely backed up
        if line.startswith("Epoch 2/8"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    backup = data / "run" / "backup" / "backup.gfm"
    kept = backup.read_bytes()
    shard = data / "packed" / "shard-00003.npy"
    shutil.copy(shard, data / "good-shard.npy")
    os.truncate(shard, 100)
    refused = _train(data, "run")
    assert refused.returncode == 2 and "shard-00003.npy has 100 bytes" in refused.stderr
    assert refused.stdout == "" and backup.read_bytes() == kept, "the last good backup is kept"
    shutil.copy(data / "good-shard.npy", shard)   # the same bytes again: the same data
    resumed = _train(data, "run")
    assert resumed.returncode == 0, resumed.stderr
    assert "(resuming at epoch" in resumed.stdout
    assert np.array_equal(load_model(data / "ref" / "model.gfm").params,
                          load_model(data / "run" / "model.gfm").params)
