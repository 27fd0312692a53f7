"""`gradfit train --optimizer lm` (and the other second-order methods): float64 and the full
batch by default, their flags derived from their declarations, the memory check with their
n x n matrices, their own stop said in results.json; every refusal before anything is printed
or written."""
import csv
import json

import pytest

from gradfit.cli import main

SMALL = ["--hidden", "8", "--patience", "0", "--val-fraction", "0", "--verbose", "0"]


def _train(tmp_path, *flags):
    return main(["train", *SMALL, "--out", str(tmp_path / "run"), *flags])


def test_lm_trains_in_float64_on_the_full_batch(tmp_path, capsys):
    assert _train(tmp_path, "--optimizer", "lm", "--epochs", "3") == 0
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["dtype"] == "float64" and config["batch_size"] is None
    assert config["optimizer_config"]["class_name"] == "LevenbergMarquardt"
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert len(rows) == 3 and "mu" in rows[0] and "learning_rate" not in rows[0]
    assert json.loads((run / "results.json").read_text())["ended"] == "finished"
    assert "Finished 3 epochs" in capsys.readouterr().out


def test_the_methods_own_stop_is_said(tmp_path, capsys):
    assert _train(tmp_path, "--optimizer", "lbfgs", "--gtol", "1e3", "--epochs", "5") == 0
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result["ended"] == "optimizer_stop" and result["epochs_run"] == 1
    assert "gradient converged" in result["message"]
    assert "by the optimizer" in capsys.readouterr().out


def test_mini_batch_only_when_asked(tmp_path, capsys):
    assert _train(tmp_path, "--optimizer", "lm", "--batch-size", "64", "--allow-mini-batch",
                  "--epochs", "1") == 0


@pytest.mark.parametrize("flags,message", [
    (["--dtype", "float32"], "--dtype must be float64 for --optimizer lm"),
    (["--dropout", "0.2"], "--dropout must be 0 for --optimizer lm"),
    (["--batch-size", "64"], r"--batch-size must be the 1,438 training examples .* got 64; leave "
                             r"--batch-size out \(the whole set\), or set --allow-mini-batch"),
    (["--batch-size", "auto"], "--batch-size must be a number, or left out"),
    (["--mu", "0"], "--mu: must be a finite number > 0, got 0"),
    (["--performance", "mae"], "--performance: must be one of 'mse', 'sse', got 'mae'"),
    (["--history", "5"], "lm takes: --mu, --mu-dec"),
])
def test_refused_before_anything_is_printed(tmp_path, capsys, flags, message):
    assert _train(tmp_path, "--optimizer", "lm", *flags) == 2
    out = capsys.readouterr()
    assert out.out == "" and not (tmp_path / "run").exists()
    assert pytest.importorskip("re").search(message, out.err), out.err


def test_memory_check_counts_the_methods_matrices(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRADFIT_MEMORY_AVAILABLE", "5e7")   # H: 2 x 739 MB; L-BFGS: 2 MB
    assert main(["train", "--hidden", "128", "--optimizer", "newton", "--out",
                 str(tmp_path / "run")]) == 2
    out = capsys.readouterr()
    assert out.out == "" and not (tmp_path / "run").exists()
    assert "newton on this 64-128-10 network needs the Hessian H of 9,610² float64" in out.err
    assert "use 'lbfgs' (history 1.5 MB), 'newton_cg'" in out.err
    assert main(["train", *SMALL, "--hidden", "128", "--optimizer", "lbfgs", "--epochs", "1",
                 "--out", str(tmp_path / "ok")]) == 0
