"""Train several configs at once on a lent GPU; bring back each one as a 7-bit int8 ONNX model.

The device tool runs one command of at most 10 minutes on a machine that starts bare, and brings
back at most 8 files of 16 MiB from ``$OUT``: a resnet18 is 11 MB as int8 ONNX but 45 MB as
fp32 weights, so the models come back exported, scored here later. First, here:

    python scripts/device_data.py pack $FERCNN_DATA .device/fer2013-trainval.xz \\
        --ferplus fer2013new.csv

then, as the device command (carry ``.device``):

    PYTHONPATH=src python3 scripts/device_train.py .device/fer2013-trainval.xz --minutes 7 \\
        configs/resnet18.yaml configs/vgg-ema.yaml configs/resnet18.yaml:2

Each ``CONFIG[:SEED]`` trains in its own process; at 48x48 one run leaves an H200 mostly idle, so
they share it. Each is given the time left as ``fercnn train --minutes``: after its first epochs
it keeps as many of its config's epochs as fit, its schedule fitted to them, and its
``config.yaml`` (in ``runs.tar.gz``) records how many, to reproduce it. A run still going
``--minutes`` after the command started is stopped all the same: exporting
then takes about a minute more (a resnet18's int8 export took 35 s on 2 cores here), so
``--minutes 7`` fits a 9.5-minute call. Its atomic checkpoints stay in the
work folder, and the same command on the still-warm machine resumes it (``--resume``). Then
every run with a ``best.pt`` is exported into ``$OUT`` (at most 7 models), and ``runs.tar.gz``
holds each run's config, history, metrics and log: ``summary.json`` in it says which runs
finished. The data holds no PrivateTest: score the models here with
``fercnn evaluate MODEL.onnx --split PrivateTest`` (once, after choosing on PublicTest).
Teachers may be the bundled models (``accurate``: onnxruntime on the machine's CPUs); a config
whose ``init`` or ``teachers`` name a run folder needs that folder on the machine first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from device_data import unpack  # beside this file: run as a script from scripts/

from fercnn.errors import FercnnError
from fercnn.training.config import load_config

MAX_MODELS = 7  # the tool brings back 8 files: the models and the archive
RUN_FILES = ("config.yaml", "history.csv", "metrics.json", "train.log")


def run_name(spec: str) -> tuple[str, str, str | None]:
    """``configs/x.yaml:2`` -> (run name ``x-seed2``, config path, seed)."""
    config, _, seed = spec.partition(":")
    name = Path(config).stem + (f"-seed{seed}" if seed else "")
    return name, config, seed or None


def train_command(config: str, seed: str | None, out: Path, data: Path, device: str,
                  resume: bool, extra: list[str], minutes: float) -> list[str]:
    command = [sys.executable, "-m", "fercnn", "train", "--config", config, "--out", str(out),
               "--data", str(data), "--device", device, "--minutes", f"{minutes:.2f}", *extra]
    settings = load_config(config)
    if settings.ferplus or settings.crowd_votes:  # the packed FER+ rows
        command += ["--ferplus", str(data.parent / "fer2013new.csv")]
    if seed:
        command += ["--seed", seed]
    if resume:
        command.append("--resume")
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packed", type=Path, help="from scripts/device_data.py pack")
    parser.add_argument("specs", nargs="+", metavar="CONFIG[:SEED]")
    parser.add_argument("--minutes", type=float, default=7.0,
                        help="stop the runs still going this long after the command started, "
                             "unpacking included (default 7); exporting takes about a "
                             "minute more")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fercnn-device"),
                        help="data and run folders (kept while the machine stays warm)")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="where the models go (default $OUT)")
    parser.add_argument("--device", default="cuda", help="cuda; cpu for a rehearsal here")
    parser.add_argument("--train-args", default="",
                        help="more fercnn train options, e.g. '--epochs 1 --limit 256'")
    args = parser.parse_args(argv)
    started = time.monotonic()  # the tool's limit counts the unpacking too
    if args.out is None:
        parser.error("--out is needed where $OUT is not set")
    runs = [run_name(s) for s in args.specs]
    if len(runs) > MAX_MODELS:
        parser.error(f"at most {MAX_MODELS} runs: the device tool brings back 8 files")
    if len({name for name, _, _ in runs}) != len(runs):
        parser.error("the same config and seed twice")
    missing = [config for _, config, _ in runs if not Path(config).is_file()]
    if missing:
        parser.error(f"no such config: {', '.join(missing)}")

    data = args.work / "data" / "fer2013.csv"
    if not data.exists():
        try:
            print("unpacked", unpack(args.packed, data), flush=True)
        except FercnnError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    processes = {}
    # each run fits its schedule to the time left (fercnn train --minutes), a little short of
    # the deadline, so that it ends annealed instead of being stopped mid-schedule
    left = max(args.minutes - (time.monotonic() - started) / 60 - 0.25, 0.1)
    for name, config, seed in runs:
        out = args.work / "runs" / name
        command = train_command(config, seed, out, data, args.device,
                                (out / "last.pt").exists(), args.train_args.split(), left)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "train.log", "a") as log:
            processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = started + args.minutes * 60
    for process in processes.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.terminate()  # a checkpoint is written whole or not at all
            process.wait()
    print(f"trained for {(time.monotonic() - started) / 60:.1f} min", flush=True)

    summary, exports = {}, {}
    for name, _, _ in runs:
        out = args.work / "runs" / name
        metrics = out / "metrics.json"
        summary[name] = {"finished": metrics.exists(),
                         "exit": processes[name].returncode,
                         **(json.loads(metrics.read_text()) if metrics.exists() else {})}
        if (out / "best.pt").exists():  # all at once: each takes a core for a few seconds
            exports[name] = subprocess.Popen(
                [sys.executable, "-m", "fercnn", "export", str(out), "--int8", "--data",
                 str(data), "--out", str(args.out / f"{name}.onnx")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for name, export in exports.items():
        error = export.communicate()[1]
        summary[name]["exported"] = export.returncode == 0
        if export.returncode:
            summary[name]["export_error"] = error.strip()[-500:]
    for name, _, _ in runs:
        print(name, {k: summary[name].get(k) for k in
                     ("finished", "exit", "exported", "epochs_run", "best_val_acc")}, flush=True)
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2))
    with tarfile.open(args.out / "runs.tar.gz", "w:gz") as tar:
        tar.add(args.work / "summary.json", arcname="summary.json")
        for name, _, _ in runs:
            for file in RUN_FILES:
                path = args.work / "runs" / name / file
                if path.exists():
                    tar.add(path, arcname=f"{name}/{file}")
    return 0 if all(s["finished"] and s.get("exported") for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
