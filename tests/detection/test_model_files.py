"""A missing or altered model file (the pose model above all): the inference worker refuses to
start with a message naming the file, and /healthz says so (503 with the reason)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from ml.model_card import ModelCard
from tests.support.live import child_env

pytestmark = [pytest.mark.django_db(transaction=True)]


def copy_of_shipped_model(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped cascade with its own copy of the pose model (which the card's
    loader prefers to the packaged one), so a test can break either file."""
    folder = tmp_path / "model"
    shutil.copytree(settings.DEFAULT_MODEL_DIR, folder)
    card = ModelCard.load(folder)
    pose_name = str(card.stages[1].details["pose_model"]["file"])
    packaged = Path(settings.BASE_DIR) / "ml" / "artifacts" / "pose" / pose_name
    shutil.copy(packaged, folder / pose_name)
    return folder, folder / pose_name


def altered(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    path.write_bytes(bytes(data))


def missing(path: Path) -> None:
    path.unlink()


def start_inference_worker(model_dir: Path, queues: str = "inference,default"):
    return subprocess.run(
        [
            sys.executable, "-m", "celery", "-A", "abusewatch", "worker", "-Q", queues,
            "-P", "solo", "-n", "model-check@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "WARNING",
        ],
        env=child_env(model_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


# (what breaks, how): the pose model's copy in the artifact folder altered (one byte), the
# pose stage's classifier missing, stage 1's network missing.
BREAKAGES = [("pose model", altered), ("pose_stage.json", missing), ("model.keras", missing)]
BREAKAGE_IDS = ["altered-pose-model", "missing-pose-stage", "missing-model-keras"]


def broken_model(tmp_path: Path, target: str, damage) -> tuple[Path, Path]:
    folder, pose_model = copy_of_shipped_model(tmp_path)
    path = pose_model if target == "pose model" else folder / target
    damage(path)
    return folder, path


@pytest.mark.slow
@pytest.mark.parametrize(("target", "damage"), BREAKAGES, ids=BREAKAGE_IDS)
def test_the_inference_worker_refuses_to_start_naming_the_file(tmp_path, target, damage):
    folder, broken = broken_model(tmp_path, target, damage)
    finished = start_inference_worker(folder)
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert "refuses to start" in output and str(broken) in output
    assert ("altered" if damage is altered else "missing") in output
    assert "ready." not in output


@pytest.mark.slow
def test_a_worker_that_holds_no_model_starts_whatever_the_model_files(tmp_path):
    """The check is for workers of the model queues; a default-queue worker has no model."""
    folder, pose_model = copy_of_shipped_model(tmp_path)
    altered(pose_model)
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "abusewatch", "worker", "-Q", "default",
            "-P", "solo", "-n", "no-model@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "INFO",
        ],
        env=child_env(folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            if "ready." in line:
                break
            assert "refuses to start" not in line
        assert worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(30)


@pytest.mark.parametrize(("target", "damage"), BREAKAGES, ids=BREAKAGE_IDS)
def test_healthz_is_503_naming_the_broken_model_file(tmp_path, settings, target, damage):
    folder, pose_model = copy_of_shipped_model(tmp_path)
    settings.DEFAULT_MODEL_DIR = folder
    response = Client().get("/healthz")
    assert response.json()["checks"]["model"] == {"ok": True}

    broken = pose_model if target == "pose model" else folder / target
    damage(broken)
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    check = body["checks"]["model"]
    assert check["ok"] is False and check["error"] == "ModelFiles"
    assert broken.name in check["reason"]
    assert ("altered" if damage is altered else "missing") in check["reason"]
