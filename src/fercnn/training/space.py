"""A search space for ``fercnn tune``: YAML naming config settings and their ranges.

    lr: {type: float, low: 0.001, high: 0.1, log: true}
    shift: {type: int, low: 0, high: 6}
    batch_size: {type: categorical, choices: [64, 128]}

Checked against ``TrainConfig`` before any trial runs: an unknown setting, a missing bound or a
range whose ends make no valid config is one line, not a failure an hour into a study.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..errors import FercnnError
from .config import TrainConfig, config_from_dict

KINDS = ("float", "int", "categorical")
FIXED = ("name", "data")  # the study sets these; searching them makes no sense


def load_space(path: str | Path, base: TrainConfig) -> dict[str, dict]:
    """The space in ``path``, checked against ``base`` (see :func:`check_space`)."""
    import yaml

    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FercnnError(f"{path}: no such search-space file") from None
    except yaml.YAMLError as e:
        raise FercnnError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return check_space(values, base, str(path))


def check_space(values: Any, base: TrainConfig, source: str = "space") -> dict[str, dict]:
    """The space in a normal form (every key present), or a one-line FercnnError."""
    if not isinstance(values, dict) or not values:
        raise FercnnError(f"{source}: expected a mapping of settings to ranges, e.g. "
                          "lr: {type: float, low: 0.001, high: 0.1, log: true}")
    known = [f.name for f in fields(TrainConfig) if f.name not in FIXED]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise FercnnError(f"{source}: unknown setting(s) {', '.join(map(str, unknown))}; "
                          f"known: {', '.join(known)}")
    space = {name: _dimension(name, spec, f"{source}: {name}") for name, spec in values.items()}
    for name, dimension in space.items():
        for value in _extremes(dimension):
            config_from_dict({**asdict(base), name: value}, f"{source}: {name} = {value!r}")
    return space


def _dimension(name: str, spec: Any, where: str) -> dict:
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        raise FercnnError(f"{where}: expected {{type: {' | '.join(KINDS)}, ...}}")
    kind = spec["type"]
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log",
                                                                  "step"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise FercnnError(f"{where}: unknown key(s) {', '.join(extra)} for a {kind} range "
                          f"(known: {', '.join(sorted(allowed))})")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices or not all(
                c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise FercnnError(f"{where}: choices must be a non-empty list of plain values")
        return {"type": kind, "choices": choices}
    number = float if kind == "float" else int
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) \
            or (kind == "int" and not all(isinstance(v, int) for v in (low, high))):
        raise FercnnError(f"{where}: low and high must be {kind} numbers")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if not low < high or (log and low <= 0) or (step is not None and (log or step <= 0)):
        raise FercnnError(f"{where}: needs low < high (low > 0 with log; a positive step, "
                          "never with log)")
    return {"type": kind, "low": number(low), "high": number(high), "log": log,
            "step": None if step is None else number(step)}


def _extremes(dimension: dict) -> list:
    if dimension["type"] == "categorical":
        return dimension["choices"]
    return [dimension["low"], dimension["high"]]


def suggest(trial, space: dict[str, dict]) -> dict:
    """One value per setting from an Optuna trial (fixed ones when the trial was enqueued)."""
    params = {}
    for name, d in space.items():
        if d["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, d["choices"])
        elif d["type"] == "float":
            params[name] = trial.suggest_float(name, d["low"], d["high"], log=d["log"],
                                               step=d["step"])
        else:
            params[name] = trial.suggest_int(name, d["low"], d["high"], log=d["log"],
                                             step=d["step"] or 1)
    return params
