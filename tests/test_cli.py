"""The command line: each subcommand runs, writes its pictures and prints its table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradxform.playground import cli
from tests._require import require

require("matplotlib")
require("sklearn")


def test_race_writes_images_and_prints_table(tmp_path, capsys):
    code = cli.main(
        [
            "race",
            "--function",
            "local_minimum",
            "--optimizers",
            "sgd:0.1,momentum",
            "--steps",
            "300",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "steps to f-f*" in out and "sgd lr=0.1 " in out
    # a racer without a rate races at its range test's (within the range tested)
    picked = float(out.split("momentum lr=")[1].split()[0])
    assert 1e-6 < picked < 10.0
    for name in ["race_local_minimum.png", "race_local_minimum_loss.png", "race_local_minimum.gif"]:
        assert (tmp_path / name).stat().st_size > 1000


def test_race_table_reports_what_converged(tmp_path):
    rows = cli.cmd_race(
        cli.build_parser().parse_args(
            [
                "race",
                "--function",
                "local_minimum",
                "--optimizers",
                "sgd:0.1,momentum:0.1",
                "--steps",
                "300",
                "--out",
                str(tmp_path),
            ]
        )
    )
    by_name = {r[0]: r for r in rows}
    assert by_name["sgd lr=0.1"][1] == "-"  # stalls in the local minimum
    assert isinstance(by_name["momentum lr=0.1"][1], int)  # escapes and converges


def test_schedules_gallery(tmp_path, capsys):
    assert cli.main(["schedules", "--steps", "100", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "schedules.png").stat().st_size > 1000
    assert "one_cycle" in capsys.readouterr().out


def test_train_prints_summary_table(capsys):
    assert (
        cli.main(
            ["train", "--optimizers", "adamw,sgd:0.1", "--epochs", "2", "--schedule", "constant"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "test accuracy" in out and "adamw" in out and "sgd" in out


def test_train_picks_missing_rates_by_range_test_and_compares_with_the_grid(capsys):
    argv = ["train", "--optimizers", "adam,lion:0.001", "--epochs", "2", "--compare-grid"]
    assert cli.main([*argv, "--schedule", "constant"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[0].strip(): line.split("|") for line in out.splitlines()}
    picked = rows["adam"][1].strip()
    assert picked.endswith("(range test)"), out
    assert 1e-4 < float(picked.split()[0]) < 0.1  # a third of Adam's valley on digits
    assert rows["lion"][1].strip() == "0.001"  # a given rate is used as given
    for name in ("adam", "lion"):
        best_rate, best_accuracy = (float(x) for x in rows[name][6:8])
        assert best_rate in (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
        assert 0.5 < best_accuracy <= 1.0
    assert "grid: 1e-05" in out


def test_lr_free_race_reports_the_rates_it_swept_and_found(capsys):
    assert cli.main(["lr-free", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    for name in ("adamw", "schedule_free_adamw", "adam", "prodigy", "dadapt_adamw"):
        assert name in rows, out
    assert "(swept)" in rows["adam"] and "(swept)" in rows["schedule_free_adamw"]
    for name in ("prodigy", "dadapt_adamw"):  # the rate they found: a positive number
        found = rows[name].split("|")[3].strip()
        assert float(found) > 0, rows[name]
    assert rows["adam"].split("|")[3].strip() == "-"


def test_lr_sweep_prints_every_rate_and_picks_the_lowest_validation_loss(tmp_path, capsys):
    argv = ["lr-sweep", "--optimizer", "sgd", "--rates", "0.001,0.1,30", "--epochs", "2"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 2]
    table = {r[0].strip(): r[2].strip() for r in rows[1:]}
    assert set(table) == {"0.001", "0.1 (best)", "30"}, out
    assert table["30"] == "diverged"  # plain SGD at rate 30 blows up on this MLP
    assert float(table["0.1 (best)"]) < float(table["0.001"])
    assert (tmp_path / "lr_sweep_sgd.png").stat().st_size > 0


def test_lr_find(tmp_path, capsys):
    assert (
        cli.main(["lr-find", "--optimizer", "adam", "--steps", "40", "--out", str(tmp_path)]) == 0
    )
    assert (tmp_path / "lr_find_adam.png").stat().st_size > 1000
    assert "steepest descent" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["train", "--optimizers", "adamm"], "unknown optimizer 'adamm'; choose one of: adabelief"),
        (["race", "--function", "nope"], "unknown test function 'nope'; choose one of: valley"),
        (["train", "--schedule", "wiggly"], "unknown schedule 'wiggly'"),
        (["train", "--optimizers", "adam:fast"], "bad learning rate 'fast'"),
    ],
)
def test_bad_names_list_the_valid_ones(argv, expected, capsys):
    assert cli.main(argv) == 2
    assert expected in capsys.readouterr().err


def test_optimizer_names_are_the_exported_optimizers():
    names = cli.optimizer_factories()
    for expected in ["adam", "adamw", "sgd", "lion", "lamb", "adafactor", "ftrl", "momentum"]:
        assert expected in names
    assert "nesterov_lookahead_point" not in names  # a helper, not an optimizer


@pytest.mark.extended
def test_shampoo_and_soap_grids_on_the_digits_finish():
    """Vmapped over the whole grid, their training deadlocked XLA on CPU (every thread
    waiting); the CLI runs their grid one rate at a time (cli.ONE_RATE_AT_A_TIME). Each
    runs in its own process, with a timeout, so that a hang fails instead of blocking."""
    for name in ("shampoo", "soap"):
        argv = ["train", "--optimizers", f"{name}:0.01", "--epochs", "5", "--compare-grid"]
        done = subprocess.run(
            [sys.executable, "-m", "gradxform", *argv], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert name in done.stdout and "its test accuracy" in done.stdout
