"""Keep freed memory in a long-running worker instead of handing it back to the kernel at once.

A window on the inference worker's path makes arrays of a few hundred KB to a few MB (frames
from Redis, the model input of 1.2 MB, its temporaries). glibc serves blocks above its mmap
threshold with fresh mappings, and gives freed memory at the top of the heap back to the
kernel once more than its trim threshold is free. Each new array then starts on pages the
kernel must fault in and zero again. Measured on this project's 2-core AMD EPYC with the
shipped model loaded, stage 1 on batches of 20 windows (the worker's own call): 1268 page
faults per batch with glibc's defaults, 0-2 with the heap kept; 105-113 -> 102-106 ms per
batch on a quiet machine, more under load, where each fault also waits for a core. In a fresh
interpreter without TensorFlow the same window's preprocessing took 1.57 ms against 0.72 ms
(glibc raises its thresholds by itself only after large blocks were freed, which a loaded
model has mostly done already; tests/abusewatch/test_heap.py counts the faults).

So the workers keep up to HEAP_TRIM_BYTES free before trimming and take blocks of up to
HEAP_MMAP_BYTES from the heap. The cost is memory a worker holds after a busy moment: at most
HEAP_TRIM_BYTES more per arena, measured by `bench.bench_pipeline` (peak resident).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

# mallopt(3) parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

HEAP_TRIM_BYTES = 64 << 20
# glibc caps the mmap threshold at 32 MB on 64-bit (HEAP_MAX_SIZE / 2); a whole batch of model
# inputs (32 x 1.2 MB) is still mapped anew, once per batch rather than once per window.
HEAP_MMAP_BYTES = 32 << 20


def keep_freed_heap(trim_bytes: int = HEAP_TRIM_BYTES, mmap_bytes: int = HEAP_MMAP_BYTES) -> bool:
    """Set glibc's trim and mmap thresholds for this process. False where there is no glibc
    (musl, macOS): nothing changes there and the worker runs as before."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        logger.info("no glibc mallopt here: the heap keeps the C library's defaults")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_TRIM_THRESHOLD, trim_bytes)) and bool(
        mallopt(M_MMAP_THRESHOLD, mmap_bytes)
    )
    if not done:
        logger.warning("mallopt refused the heap thresholds: the C library's defaults stay")
    return done
