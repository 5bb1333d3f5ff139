"""Keep freed memory inside the training process, so each step reuses warm pages.

glibc's malloc serves large blocks (above a threshold of 128 KiB that adapts up to 32 MiB) with
fresh ``mmap`` pages and gives them back to the kernel on ``free``. A training step frees and
re-allocates the same activations and gradients every time, so without this it pays a page
fault and a kernel zero-fill for every 4 KiB of them, every step: on the 2-core benchmark
machine keeping the memory makes fp32 training 1.13-1.19x faster
(``benchmarks/results/train_step_ablation.md``). PyTorch's CPU allocator has no cache of its own;
jemalloc or tcmalloc via ``LD_PRELOAD`` would do the same job, but need a system package.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve every block from the heap and never trim it; True where the C library is glibc.

    Memory then stays at the run's peak until the process ends, which is what a training
    process wants; inference paths do not call this.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
