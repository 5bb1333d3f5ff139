"""Recognition on a Dask cluster: a bag of image paths, mapped partition by partition.

Past one machine, the scheduling, retries and spreading of work are Dask's
(``pip install "fercnn[cluster]"``), not ours. Each worker process builds the Recognizer on its
first partition and keeps it (:func:`~.batch.cached_recognizer`), so a million paths cost one
model load per process. The paths must be readable where the workers run (a shared disk).

    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, Client(cluster):
        results = recognition_bag(paths).compute()      # ImageResult objects, in order
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FercnnError
from ..tta import tta_mode
from .batch import ImageResult, RecognizerSettings, recognize_chunk

if TYPE_CHECKING:
    import dask.bag


def recognition_bag(paths: Sequence[str | Path], model: str | Path | None = None, *,
                    partition_size: int = 16, detector: str = "blazeface",
                    min_face: int | None = None, tta: bool | str = "mirror", align: bool = True,
                    detect: bool = True, threads: int | None = 1) -> dask.bag.Bag:
    """A lazy bag of :class:`~.batch.ImageResult`, one per path and in the paths' order; run it
    with ``.compute()`` on the active scheduler (a ``dask.distributed.Client``, or Dask's
    local processes) or chain more steps onto it (``.map(ImageResult.to_dict)``).
    ``partition_size``: images per task. ``threads``: onnxruntime threads per session in a
    worker (1 suits one-thread workers)."""
    try:
        import dask.bag as db
    except ImportError:
        raise FercnnError('the Dask path needs Dask: pip install "fercnn[cluster]"') from None
    settings = RecognizerSettings(None if model is None else str(model), detector, min_face,
                                  tta_mode(tta), align, detect, threads)
    items = [(str(p), None) for p in paths]
    # small partitions (a second or so of work each) keep every worker busy to the end
    bag = db.from_sequence(items, partition_size=partition_size)
    return bag.map_partitions(_partition, settings)


def _partition(items: list, settings: RecognizerSettings) -> list[ImageResult]:
    """One partition, on a worker: the worker process's Recognizer over its images."""
    return recognize_chunk(settings, list(items))
