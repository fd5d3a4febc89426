"""abusewatch.heap: a worker reuses freed memory instead of faulting in fresh pages.

Counted in page faults, not time: the same run of window-sized temporaries in two fresh
interpreters, one with the workers' heap setting and one without.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from abusewatch.heap import keep_freed_heap

PROGRAM = """
import resource, sys
import numpy as np
if sys.argv[1] == "kept":
    from abusewatch.heap import keep_freed_heap
    assert keep_freed_heap()

def windows():
    for _ in range(50):  # a window's temporaries: 13 frames of 64 x 64 x 3 as float32
        frames = np.ones((13, 64, 64, 3), np.float32) * 2
        appearance = (frames - frames.mean(axis=0)) * 2
        del frames, appearance

windows()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
windows()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def test_a_worker_keeps_freed_memory_for_the_next_window() -> None:
    if not keep_freed_heap():
        pytest.skip("no glibc mallopt on this platform: the setting does nothing here")
    default, kept = _page_faults("default"), _page_faults("kept")
    assert default > 1000, "the C library's defaults hand each window's memory back"
    assert kept < default / 20


def test_the_celery_workers_set_it_as_they_start() -> None:
    from celery.signals import worker_init

    from abusewatch import celery

    assert celery._keep_freed_heap in [ref() for _, ref in worker_init.receivers]
