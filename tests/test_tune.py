"""``fercnn tune``: the search space is checked up front, and a study killed during a trial
resumes without losing the trial or running any trial twice."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from fercnn.errors import FercnnError
from fercnn.training.config import TrainConfig
from fercnn.training.space import check_space
from fercnn.training.tune import (
    EpochReport,
    Plan,
    StudyDeadline,
    default_storage,
    ended,
    open_study,
    requeue_interrupted,
)

from .conftest import REPO, assert_one_line_error, csv_text, make_rows, run_cli


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    """Few faces, so that a trial takes a couple of seconds."""
    path = tmp_path_factory.mktemp("tune") / "fer.csv"
    path.write_text(csv_text(make_rows({"Training": 16, "PublicTest": 14, "PrivateTest": 7})))
    return path

BASE = """model: shallow
epochs: 2
batch_size: 16
"""
SPACE = """lr: {type: float, low: 0.0003, high: 0.003, log: true}
label_smoothing: {type: float, low: 0, high: 0.2}
"""


def running_trials(database: Path) -> set[int]:
    """Trial numbers the study's SQLite file marks RUNNING (read while the study runs)."""
    if not database.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            return {n for (n,) in db.execute("SELECT number FROM trials WHERE state = "
                                              "'RUNNING'")}
    except sqlite3.OperationalError:  # the tables are not made yet, or the file is locked
        return set()


def tune_command(config: Path, space: Path, study: Path, data: Path, *extra: str) -> list:
    return [sys.executable, "-m", "fercnn", "tune", "--config", str(config), "--space",
            str(space), "--trials", "3", "--study", str(study), "--data", str(data), *extra]


def kill_during_second_trial(command: list, study: Path) -> None:
    """Start the study and SIGKILL it once trial 1 runs and has a checkpoint of an epoch."""
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if 1 in running_trials(study / "study.db") and \
                    (study / "trial-0001" / "last.pt").exists():
                break
            time.sleep(0.05)
        assert process.poll() is None, "the study ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()


def epochs_of(run: Path) -> list[str]:
    with open(run / "history.csv", newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def test_a_killed_study_resumes_with_no_trial_lost_and_none_run_twice(tmp_path, tiny_csv):
    config, space, study = tmp_path / "tiny.yaml", tmp_path / "space.yaml", tmp_path / "study"
    config.write_text(BASE)
    space.write_text(SPACE)
    command = tune_command(config, space, study, tiny_csv)
    kill_during_second_trial(command, study)
    assert running_trials(study / "study.db") == {1}  # killed mid-trial, as planned
    first = (study / "trial-0000" / "last.pt").stat().st_mtime_ns

    resumed = subprocess.run(command + ["--resume"], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "trial 1 was interrupted" in resumed.stdout
    assert f"resuming {study / 'trial-0001'} after epoch" in resumed.stdout

    trials = optuna.load_study(study_name="study",
                               storage=f"sqlite:///{study / 'study.db'}").trials
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    (killed,) = [t for t in trials if t.state == TrialState.FAIL]
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(done) == 3 and len(trials) == 4 and retry in done
    assert retry.params == killed.params and retry.user_attrs["run"] == "trial-0001"
    runs = sorted(t.user_attrs["run"] for t in done)
    assert runs == sorted(p.name for p in study.glob("trial-*")) and len(set(runs)) == 3
    assert len({tuple(sorted(t.params.items())) for t in done}) == 3
    for run in runs:  # each trial's epochs, once each, its run finished
        assert epochs_of(study / run) == ["1", "2"]
        assert (study / run / "metrics.json").exists()
    assert (study / "trial-0000" / "last.pt").stat().st_mtime_ns == first  # not run again
    for name in ("best.yaml", "trials.csv", "history.png", "parallel-coordinates.png"):
        assert (study / name).exists(), name
    assert "name: study-best" in (study / "best.yaml").read_text()


def test_requeueing_an_interrupted_trial_is_done_once_even_if_killed_halfway():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.suggest_float("lr", 0.001, 0.1, log=True)
    trial.set_user_attr("run", "trial-0000")
    # a resume killed after queueing the retry, before failing the trial: the next one
    # must not queue a second retry
    study.enqueue_trial(trial.params, user_attrs={"retry_of": 0, "run": "trial-0000"})
    assert requeue_interrupted(study) == [0]
    assert requeue_interrupted(study) == []
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    retry = study.ask()
    assert retry.params == {} and retry.user_attrs == {"retry_of": 0, "run": "trial-0000"}
    assert retry.suggest_float("lr", 0.001, 0.1, log=True) == trial.params["lr"]
    study.tell(retry, 0.5)
    assert [t.number for t in ended(study)] == [1]  # the interrupted one counts through it


@pytest.mark.parametrize("space, needle", [
    ({"learning_rate": {"type": "float", "low": 0.1, "high": 1}}, "learning_rate"),
    ({"lr": {"type": "float", "low": 0.1}}, "low and high"),
    ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "low > 0 with log"),
    ({"shift": {"type": "float", "low": 0, "high": 2.5}}, "shift must be int"),
    ({"optimizer": {"type": "categorical", "choices": ["adam", "lion"]}}, "optimizer"),
    ({"lr": {"type": "uniform", "low": 0, "high": 1}}, "type: float | int | categorical"),
])
def test_a_bad_search_space_is_refused_before_any_trial(space, needle):
    with pytest.raises(FercnnError, match=needle):
        check_space(space, TrainConfig())


def test_the_space_names_its_unknown_setting_in_one_line(tmp_path, tiny_csv):
    config, space = tmp_path / "tiny.yaml", tmp_path / "space.yaml"
    config.write_text(BASE)
    space.write_text("learning_rate: {type: float, low: 0.001, high: 0.1}\n")
    result = run_cli("tune", "--config", config, "--space", space, "--trials", "1",
                     "--study", tmp_path / "study", "--data", tiny_csv)
    assert_one_line_error(result, "unknown setting(s) learning_rate")
    assert not (tmp_path / "study").exists()


def test_the_shipped_vgg_s_space_fits_its_recipe():
    from fercnn.training.config import load_config
    from fercnn.training.space import load_space

    space = load_space(REPO / "configs" / "tune-vgg-s-space.yaml",
                       load_config(REPO / "configs" / "cpu-vgg-s.yaml"))
    assert {"lr", "weight_decay", "label_smoothing", "erase"} <= set(space)


def test_the_deadline_stops_a_trial_after_an_epoch_but_never_after_its_last():
    trial = optuna.create_study(direction="maximize").ask()
    report = EpochReport(trial, epochs=3, deadline=time.monotonic() - 1)
    with pytest.raises(StudyDeadline):
        report({"epoch": 1, "val_acc": 0.3})
    report({"epoch": 3, "val_acc": 0.5})  # the run is done: it ends as a finished trial


def test_a_trial_below_the_median_of_earlier_ones_is_pruned():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for value in (0.6, 0.7):
        trial = study.ask()
        trial.report(value, step=1)
        study.tell(trial, value)
    report = EpochReport(study.ask(), epochs=3, deadline=None)
    with pytest.raises(optuna.TrialPruned):
        report({"epoch": 1, "val_acc": 0.2})


def test_a_study_folder_is_not_reused_by_accident(tmp_path):
    space = check_space({"lr": {"type": "float", "low": 0.001, "high": 0.1}}, TrainConfig())
    plan = Plan(TrainConfig(), space, tmp_path / "study")
    plan.folder.mkdir()
    storage = default_storage(plan.folder)
    open_study(plan, storage, resume=False, pruner="median", joined=False)
    with pytest.raises(FercnnError, match="pass --resume"):
        open_study(plan, storage, resume=False, pruner="median", joined=False)
    other = Plan(TrainConfig(), {**space, "erase": check_space(
        {"erase": {"type": "float", "low": 0, "high": 0.5}}, TrainConfig())["erase"]},
        plan.folder)
    with pytest.raises(FercnnError, match="another config, search space"):
        open_study(other, storage, resume=True, pruner="median", joined=False)
    resumed = open_study(plan, storage, resume=True, pruner="none", joined=False)
    assert isinstance(resumed.pruner, optuna.pruners.MedianPruner)  # the study's own


def test_the_first_trial_is_the_base_config_and_each_trial_keeps_to_its_budget(tmp_path,
                                                                                tiny_csv):
    config, space, study = tmp_path / "tiny.yaml", tmp_path / "space.yaml", tmp_path / "study"
    config.write_text(BASE.replace("epochs: 2", "epochs: 6") + "lr: 0.002\n")
    # erase is fixed by the space at a value the base config does not have: drawn, not copied
    space.write_text(SPACE + "erase: {type: categorical, choices: [0.25]}\n")
    result = run_cli("tune", "--config", config, "--space", space, "--trials", "1",
                     "--study", study, "--data", tiny_csv, "--trial-minutes", "0.001")
    assert result.returncode == 0, result.stderr
    (trial,) = optuna.load_study(study_name="study",
                                 storage=f"sqlite:///{study / 'study.db'}").trials
    assert trial.params == {"lr": 0.002, "label_smoothing": 0.0, "erase": 0.25}
    assert trial.user_attrs["base"] is True
    with open(study / "trials.csv", newline="") as f:
        assert [row["base"] for row in csv.DictReader(f)] == ["True"]
    # a budget of 0.06 s: fewer epochs than the config's six, as `train --minutes` fits them
    assert 1 <= len(epochs_of(study / "trial-0000")) < 6
    again = run_cli("tune", "--config", config, "--space", space, "--trials", "2",
                    "--study", study, "--data", tiny_csv, "--resume")
    assert_one_line_error(again, "--trial-minutes")
