from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "surveillance-fight"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def fight_clip() -> Path:
    return FIXTURES / "fight" / "fi044.mp4"


@pytest.fixture(scope="session")
def calm_clip() -> Path:
    return FIXTURES / "noFight" / "nofi023.mp4"


def copy_clip(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
