"""What a finished (or stopped) ``fercnn tune`` study leaves in its folder: ``best.yaml`` (the
base config with the best trial's settings, ready for ``fercnn train``), ``trials.csv`` and
Optuna's figures (optimisation history, parameter importances, parallel coordinates)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from .config import config_from_dict

FIGURES = {  # file -> (Optuna's matplotlib plot, complete trials it needs)
    "history.png": ("plot_optimization_history", 1),
    "importances.png": ("plot_param_importances", 2),
    "parallel-coordinates.png": ("plot_parallel_coordinate", 1),
}


def write_results(study: optuna.Study, folder: Path) -> dict:
    """best.yaml, trials.csv and the figures; a summary with what was skipped and why."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    write_trials_csv(trials, folder / "trials.csv")
    summary = {"study": study.study_name, "trials": len(trials),
               "states": {s.name.lower(): sum(t.state == s for t in trials)
                          for s in TrialState if any(t.state == s for t in trials)},
               "trials_csv": str(folder / "trials.csv"), "figures": [], "skipped": []}
    if complete:
        best = study.best_trial
        summary.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                       best_run=best.user_attrs.get("run"),
                       best_config=str(write_best(study, best, folder / "best.yaml")))
    for name, (plot, needs) in FIGURES.items():
        if len(complete) < needs:
            summary["skipped"].append(f"{name}: needs {needs} complete trial(s), the study has "
                                      f"{len(complete)}")
            continue
        try:
            save_plot(lambda plot=plot: getattr(optuna.visualization.matplotlib, plot)(study),
                      folder / name)
            summary["figures"].append(str(folder / name))
        except (ValueError, RuntimeError, ImportError) as e:  # e.g. no parameter varied
            summary["skipped"].append(f"{name}: {e}")
    return summary


def write_best(study: optuna.Study, best: FrozenTrial, path: Path) -> Path:
    """The base config with the best trial's settings, as a config file of its own."""
    import yaml

    config = config_from_dict({**study.user_attrs["fercnn"]["base"], **best.params,
                               "name": f"{study.study_name}-best"}, str(path))
    header = (f"# best of study {study.study_name}: trial {best.number} "
              f"({best.user_attrs.get('run')}), validation (PublicTest) accuracy "
              f"{best.value:.4f}\n")
    path.write_text(header + yaml.safe_dump(asdict(config), sort_keys=False))
    return path


def write_trials_csv(trials: list[FrozenTrial], path: Path) -> None:
    """One row per trial: number, state, value, run folder, whether it is the base config,
    retry, epochs, seconds, settings."""
    names = list(dict.fromkeys(k for t in trials for k in t.params))
    columns = ["number", "state", "value", "run", "base", "retry_of", "epochs", "seconds",
               *names,
               "error"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for t in trials:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
                if t.datetime_complete and t.datetime_start else None
            writer.writerow({"number": t.number, "state": t.state.name, "value": t.value,
                             "run": t.user_attrs.get("run"),
                             "base": bool(t.user_attrs.get("base")),
                             "retry_of": t.user_attrs.get("retry_of"),
                             "epochs": len(t.intermediate_values),
                             "seconds": None if seconds is None else round(seconds, 1),
                             **t.params, "error": t.user_attrs.get("error")})


def save_plot(draw: Callable, path: Path) -> None:
    """One of Optuna's matplotlib figures, drawn with the file-only backend, to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        axes = draw()
    figure = getattr(axes, "figure", None) or axes.flat[0].figure
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
