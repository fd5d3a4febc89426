"""The inference worker runs each stage-1 model call on INFERENCE_TF_THREADS cores.

Set before TensorFlow starts its runtime, so each case runs in a fresh process that loads the
model as a worker does (detection.inference.detector_for)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings

from ml.runtime import limit_tensorflow_threads

LOAD_AND_REPORT = """
import django
django.setup()
from django.conf import settings
from detection.inference import detector_for
detector_for(str(settings.DEFAULT_MODEL_DIR), with_stage2=False)
import tensorflow as tf
print("threads", tf.config.threading.get_intra_op_parallelism_threads())
"""


@pytest.mark.parametrize(("setting", "expected"), [("1", 1), ("2", 2), ("0", 0)])
def test_a_worker_loads_its_model_on_the_set_number_of_threads(setting, expected):
    env = {
        "DJANGO_SETTINGS_MODULE": "abusewatch.settings",
        "DEBUG": "1",
        "DATABASE_URL": "sqlite:///:memory:",
        "REDIS_URL": "",
        "DEFAULT_MODEL_DIR": str(settings.DEFAULT_MODEL_DIR),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "INFERENCE_TF_THREADS": setting,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_REPORT],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"threads {expected}" in done.stdout.splitlines()


def test_too_late_to_change_is_said_not_hidden():
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # the runtime is running in this process now
    current = tf.config.threading.get_intra_op_parallelism_threads()
    assert limit_tensorflow_threads(current + 3) is False
    assert limit_tensorflow_threads(0) is True  # no limit asked: nothing to apply
