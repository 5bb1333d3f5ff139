"""Batch recognition throughput: images/s of ``recognize_paths`` in 1 and 2 processes and of
the Dask path on a local cluster of 2 processes, on the same images in the same run.

    FERCNN_REAL_DATA=../shared/data python benchmarks/batch_throughput.py [--images 200]

Two sets of images (from ``$FERCNN_REAL_DATA``, default ``../shared/data``, never copied into
the repository): the first ``--images`` photos of ``wild-dev`` (350x350 portraits and small
face crops: detection is cheap, so per-image overheads show) and ``photos/`` (a 640x427 family
photo, a 10-megapixel group photo, a 7-megapixel portrait) with the bundled 512x512 portrait,
each listed ``--copies`` times (large photos: detection dominates). One process uses
onnxruntime's default threads (all cores, as ``fercnn predict`` does); each pooled or Dask
worker one thread. Pool times include starting the processes and loading the models, as a
``predict --workers 2`` call pays them; Dask times exclude starting the cluster (reported
apart: a cluster is usually kept running) but include each worker's first model load. Each
figure is the median of ``--repeats`` runs; ratios are against one process in this run.
Results go to benchmarks/results/batch_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from host import cpu_description

from fercnn.recognition import DEMO_PHOTO
from fercnn.recognition.batch import ImageResult, recognize_paths

RESULTS = Path(__file__).resolve().parent / "results"
WORKERS = 2


def image_sets(data: Path, images: int, copies: int) -> dict[str, list[str]]:
    with open(data / "wild-dev" / "labels.csv", newline="") as f:
        wild = [str(data / "wild-dev" / row["path"]) for row in csv.DictReader(f)][:images]
    photos = sorted(str(p) for p in (data / "photos").glob("*.jpg")) + [str(DEMO_PHOTO)]
    return {f"wild-dev ({len(wild)} images)": wild,
            f"photos ({len(photos)} photos x {copies})": photos * copies}


def cpu_seconds(children: bool = True) -> float:
    """CPU time of this process and (``children``) of its children that have ended: a pool's
    workers, joined when its call returns."""
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) if children else \
        (resource.RUSAGE_SELF,)
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, who))


Run = tuple[float, float, list[ImageResult]]  # wall seconds, CPU seconds, results


def pooled(paths: list[str], workers: int) -> Run:
    """One ``recognize_paths`` call, process start-up and model loading included."""
    used, begin = cpu_seconds(), time.perf_counter()
    results = list(recognize_paths(paths, workers=workers))
    return time.perf_counter() - begin, cpu_seconds() - used, results


def on_dask(paths: list[str], starts: list[float]) -> Run:
    """One compute on a fresh local cluster, whose start-up goes to ``starts``; CPU time is
    this process's (client, scheduler) and the workers' (asked before and after)."""
    from dask.distributed import Client, LocalCluster

    from fercnn.recognition.cluster import recognition_bag

    begin = time.perf_counter()
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(WORKERS)
        starts.append(time.perf_counter() - begin)
        workers_before = sum(client.run(cpu_seconds, False).values())
        used, begin = cpu_seconds(False), time.perf_counter()
        results = recognition_bag(paths).compute()
        seconds, used = time.perf_counter() - begin, cpu_seconds(False) - used
        return seconds, used + sum(client.run(cpu_seconds, False).values()) - workers_before, \
            results


def measure(paths: list[str], repeats: int, dask_starts: list[float]) -> list[dict]:
    """Each path once per repeat, in turn (a load that comes and goes hits all of them)."""
    runs = {"recognize_paths, 1 process": lambda: pooled(paths, 1),
            f"recognize_paths, {WORKERS} processes": lambda: pooled(paths, WORKERS),
            f"Dask bag, LocalCluster of {WORKERS} processes": lambda: on_dask(paths,
                                                                               dask_starts)}
    done: dict[str, list[Run]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            done[name].append(run())
    rows = []
    for name, measured in done.items():
        seconds = statistics.median(m[0] for m in measured)
        cpu = statistics.median(m[1] for m in measured)
        rows.append({"path": name, "seconds": round(seconds, 3),
                     "images_per_s": round(len(paths) / seconds, 1),
                     "faces": sum(len(r.faces) for r in measured[-1][2]),
                     "cpu_ms_per_image": round(1000 * cpu / len(paths), 1),
                     "cores_busy": round(cpu / seconds, 2),
                     "all_seconds": [round(m[0], 3) for m in measured]})
        print(rows[-1], flush=True)
    for row in rows:
        row["ratio"] = round(row["images_per_s"] / rows[0]["images_per_s"], 2)
    return rows


def burn(n: int) -> int:
    """Pure-Python work that needs nothing but a core: the control."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def control(repeats: int, tasks: int = 8, n: int = 2_000_000) -> dict:
    """The same fixed work in 1 and in ``WORKERS`` processes (pool start-up included): the
    speed-up any ``WORKERS``-process path could reach on this machine at this moment."""
    times: dict[int, list[float]] = {1: [], WORKERS: []}
    for _ in range(repeats):
        for workers in times:
            begin = time.perf_counter()
            if workers == 1:
                [burn(n) for _ in range(tasks)]
            else:
                with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                    list(pool.map(burn, [n] * tasks))
            times[workers].append(time.perf_counter() - begin)
    one, many = (statistics.median(times[w]) for w in (1, WORKERS))
    return {"one_process_s": round(one, 2), "pool_s": round(many, 2),
            "ratio": round(one / many, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="wild-dev photos")
    parser.add_argument("--copies", type=int, default=2, help="times each large photo counts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = Path(os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    pool_start = statistics.median(pooled([str(DEMO_PHOTO)], WORKERS)[0]
                                   for _ in range(args.repeats))
    checks = [control(args.repeats)]
    print("control", checks[0], flush=True)
    sets, dask_starts = [], []
    for name, paths in image_sets(data, args.images, args.copies).items():
        print(name, flush=True)
        sets.append({"set": name, "images": len(paths),
                     "rows": measure(paths, args.repeats, dask_starts)})
    checks.append(control(args.repeats))
    print("control", checks[1], flush=True)
    result = {"cpu": cpu_description(), "cores": os.cpu_count(), "workers": WORKERS,
              "repeats": args.repeats, "load_average_before": round(load, 2),
              "load_average_after": round(os.getloadavg()[0], 2),
              "pool_one_image_s": round(pool_start, 2),
              "dask_cluster_start_s": round(statistics.median(dask_starts), 2),
              "total_s": round(time.perf_counter() - start, 1), "control": checks,
              "sets": sets}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batch_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "batch_throughput.md").write_text(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        "# Batch recognition throughput",
        "",
        f"CPU: {result['cpu']}, {result['cores']} cores (1-minute load average "
        f"{result['load_average_before']} before the run, {result['load_average_after']} "
        "after: the machine is shared); median of "
        f"{result['repeats']} runs, the paths taking turns; "
        "`python benchmarks/batch_throughput.py`. Ratio: against one process, in this run.",
        "",
    ]
    for s in result["sets"]:
        lines += [f"## {s['set']}", "",
                  "| path | seconds | images/s | ratio | CPU ms/image | cores busy | faces |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['path']} | {r['seconds']} | {r['images_per_s']} | {r['ratio']} | "
                  f"{r['cpu_ms_per_image']} | {r['cores_busy']} | {r['faces']} |"
                  for r in s["rows"]]
        lines.append("")
    lines += [
        f"Fixed costs: a {result['workers']}-process `recognize_paths` call on one image takes "
        f"{result['pool_one_image_s']} s (starting the processes, loading the models); "
        f"starting the Dask cluster {result['dask_cluster_start_s']} s (not in its times).",
        "",
        "CPU ms/image: CPU time of every process taking part, over the same span as its "
        "seconds (the pool's start-up included, the Dask cluster's not), per image: what the "
        "work costs whatever else the machine runs. Cores busy: that CPU time over the "
        "seconds. On a loaded machine the wall-clock figures measure the share of the cores "
        "each path got from the scheduler as much as the path itself.",
        "",
    ]
    before, after = result["control"]
    lines += [
        f"Control: the same pure-Python work took {before['one_process_s']} s in one process "
        f"and {before['pool_s']} s in a pool of {result['workers']} before the run (ratio "
        f"{before['ratio']}), {after['one_process_s']} s and {after['pool_s']} s after it "
        f"(ratio {after['ratio']}): the most any {result['workers']}-process path could gain "
        "on this machine during this run. A ratio of 1 or less means the other jobs left "
        "this run a fixed share of the cores however many processes it started (Linux's "
        "autogroup scheduling shares the CPU between sessions, not processes), and the rows "
        "above then compare what each path costs, not the speed-up it has on idle cores.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
