"""``fercnn tune``: an Optuna study over a base config, each trial an ordinary run folder.

The study lives in a database (SQLite in the study folder unless a shared ``--storage`` URL is
given), so a killed study continues with ``--resume``: a trial that was running when the
process died is marked failed and enqueued again, once, with the same settings, and its retry
resumes the killed trial's run folder from its last checkpoint; a finished trial never runs
again. Trials are scored on PublicTest (the validation split the training loop reports each
epoch, which also drives pruning); PrivateTest is never read.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from ..errors import FercnnError
from .checkpoint import load_checkpoint
from .config import TrainConfig, config_from_dict
from .loop import train
from .space import suggest

PRUNERS = ("median", "hyperband", "none")
ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class StudyDeadline(Exception):
    """``--minutes`` ran out during a trial: it stops after its epoch, to be continued."""


@dataclass
class Plan:
    """What every trial of a study shares: the base config, the space, where runs go."""

    base: TrainConfig
    space: dict[str, dict]
    folder: Path
    deadline: float | None = None  # time.monotonic() at which --minutes runs out
    trial_minutes: float | None = None  # each trial's budget, as `fercnn train --minutes`


def default_storage(folder: Path) -> str:
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def make_pruner(name: str, base: TrainConfig, space: dict) -> optuna.pruners.BasePruner:
    """Pruning on the validation accuracy of each epoch. The median rule waits for five
    finished trials and a quarter of the epochs, since early epochs of a cosine schedule at a
    high rate say little; Hyperband spends its epochs on the promising trials."""
    searched = space.get("epochs", {})
    epochs = max([base.epochs, searched.get("high", 0), *searched.get("choices", [])])
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=epochs // 4)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 9),
                                              max_resource=epochs)
    return optuna.pruners.NopPruner()


def open_study(plan: Plan, storage: str, resume: bool, pruner: str, joined: bool
               ) -> optuna.Study:
    """The study in ``storage``, named after the study folder: created, or loaded (with
    ``resume``, or as one of several workers on a shared database: ``joined``). A loaded
    study must have been started with the same config and space."""
    name = plan.folder.name
    exists = name in optuna.study.get_all_study_names(storage)
    if exists and not (resume or joined):
        raise FercnnError(f"{plan.folder} already holds a study: pass --resume to continue "
                          "it, or choose another --study")
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                load_if_exists=True)
    saved = study.user_attrs.get("fercnn")
    if saved is None:  # one attribute, written at once: a kill leaves all of it or none
        saved = {"base": asdict(plan.base), "space": plan.space, "pruner": pruner,
                 "trial_minutes": plan.trial_minutes}
        enqueue_base(study, plan)
        study.set_user_attr("fercnn", saved)
    elif config_from_dict(saved["base"]).digest() != plan.base.digest() \
            or saved["space"] != plan.space \
            or saved.get("trial_minutes") != plan.trial_minutes:
        raise FercnnError(f"{plan.folder}: the study was started with another config, "
                          "search space or --trial-minutes; use another --study")
    study.pruner = make_pruner(saved["pruner"], plan.base, plan.space)  # the study's own
    # seeded from the trials so far, so a resumed study does not draw its first trials again;
    # workers sharing a database draw independently
    seed = None if joined else plan.base.seed + len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


def enqueue_base(study: optuna.Study, plan: Plan) -> None:
    """The base config's own values as the first trial: the study then says whether tuning
    beats the hand-made recipe under the same budget. A setting whose base value lies outside
    its range (a space that fixes ``ema_warmup: true`` for every trial, say) is drawn as any
    trial's would be."""
    values = {name: getattr(plan.base, name) for name in plan.space}
    study.enqueue_trial({name: value for name, value in values.items()
                         if within(plan.space[name], value)}, user_attrs={"base": True})


def within(dimension: dict, value) -> bool:
    if dimension["type"] == "categorical":
        return value in dimension["choices"]
    return dimension["low"] <= value <= dimension["high"]


def requeue(study: optuna.Study, trial: FrozenTrial | Trial) -> None:
    """Enqueue ``trial``'s settings again, retrying in its run folder, unless a retry of it
    is already queued; then mark it failed. Run in this order, a kill between the two steps
    leaves one retry, never none and never two."""
    queued = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    if trial.number not in queued:
        run = {"run": trial.user_attrs["run"]} if "run" in trial.user_attrs else {}
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, **run})
    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """The trials left running by a killed study, each requeued once (:func:`requeue`)."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        requeue(study, trial)
    return [t.number for t in running]


def ended(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards ``--trials``: finished, pruned, or failed for good (an
    interrupted trial, failed and retried, counts through its retry)."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return [t for t in trials if t.state in ENDED and t.number not in retried]


class EpochReport:
    """The loop's per-epoch callback: the validation accuracy to Optuna (for pruning), and
    the study's deadline, checked after each epoch but the last."""

    def __init__(self, trial: Trial, epochs: int, deadline: float | None) -> None:
        self.trial, self.epochs, self.deadline = trial, epochs, deadline

    def __call__(self, row: dict) -> None:
        self.trial.report(row["val_acc"], step=row["epoch"])
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")
        if self.deadline is not None and row["epoch"] < self.epochs \
                and time.monotonic() >= self.deadline:
            raise StudyDeadline


def run_trial(trial: Trial, plan: Plan) -> float:
    """Train one trial's config in its run folder; its best validation accuracy. A retry
    resumes its run folder, and first reports the epochs that folder already holds."""
    params = suggest(trial, plan.space)
    run = trial.user_attrs.get("run") or f"trial-{trial.number:04d}"
    trial.set_user_attr("run", run)
    config = config_from_dict({**asdict(plan.base), **params, "name": run},
                              f"trial {trial.number}")
    out = plan.folder / run
    report = EpochReport(trial, config.epochs, plan.deadline)
    retry = "retry_of" in trial.user_attrs
    if retry and (out / "last.pt").exists():
        for row in load_checkpoint(out / "last.pt")["history"]:
            report(row)
    return train(config, out, resume=retry, minutes=plan.trial_minutes,
                 on_epoch=report)["best_val_acc"]


def describe(trial: Trial) -> str:
    retry = trial.user_attrs.get("retry_of")
    settings = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in trial.params.items())
    return (f"trial {trial.number} ({trial.user_attrs.get('run')}"
            + (f", retrying trial {retry}" if retry is not None else "") + f"): {settings}")


def play(study: optuna.Study, trial: Trial, plan: Plan) -> bool:
    """Run one asked trial and tell the study how it ended; False when the deadline stopped
    it (it is requeued, to continue on --resume)."""
    try:
        value = run_trial(trial, plan)
    except optuna.TrialPruned as e:
        study.tell(trial, state=TrialState.PRUNED)
        print(f"{describe(trial)}: {e}", flush=True)
    except StudyDeadline:
        requeue(study, trial)
        print(f"{describe(trial)}: stopped at the --minutes deadline; --resume continues it",
              flush=True)
        return False
    except FercnnError as e:  # settings that make no valid run: this trial fails, not the study
        trial.set_user_attr("error", str(e))
        study.tell(trial, state=TrialState.FAIL)
        print(f"{describe(trial)}: failed: {e}", flush=True)
    else:
        study.tell(trial, value)
        print(f"{describe(trial)}: validation accuracy {value:.4f}", flush=True)
    return True


def tune(base: TrainConfig, space: dict[str, dict], folder: str | Path, trials: int,
         minutes: float | None = None, resume: bool = False, storage: str | None = None,
         pruner: str = "median", trial_minutes: float | None = None) -> dict:
    """Run the study until ``trials`` trials have ended (or ``minutes`` have passed), then
    write best.yaml, trials.csv and the figures to the study folder; returns its summary."""
    from .study_report import write_results

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plan = Plan(base, space, folder,
                time.monotonic() + minutes * 60 if minutes else None, trial_minutes)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(plan, storage or default_storage(folder), resume, pruner,
                       joined=storage is not None)
    if resume:
        for number in requeue_interrupted(study):
            print(f"trial {number} was interrupted: queued again with its settings", flush=True)
    while len(ended(study)) < trials:
        if plan.deadline is not None and time.monotonic() >= plan.deadline:
            print(f"--minutes {minutes:g} reached", flush=True)
            break
        if not play(study, study.ask(), plan):
            break
    return write_results(study, folder)
